// The declare page, enhanced: plan defaults, checks as you type, related-item rows, upload progress, preview.
// The page works without this file; every rule and message here comes from the server (#declare-rules), so the
// browser's verdict is the server's verdict.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  let rules = null;
  let patterns = null;

  function loadRules() {
    const element = document.getElementById("declare-rules");
    if (!element) return false;
    rules = JSON.parse(element.textContent);
    patterns = {
      url: new RegExp(rules.url_pattern, "i"),
      scheme: new RegExp(rules.scheme_pattern),
      arn: new RegExp(rules.arn_pattern),
      control: new RegExp(rules.control_characters_pattern),
      invisible: new RegExp(rules.invisible_characters_pattern, "u"),
      unsafeFileName: new RegExp(rules.unsafe_file_name_pattern, "g"),
    };
    return true;
  }

  function message(name, values = {}) {
    return rules.messages[name].replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
  }

  // Python counts code points; JavaScript's .length counts UTF-16 units.
  const length = (text) => [...text].length;

  // --- The server's rules (validators.py), applied to one value -------------------------------------------

  // validators.reject_control_characters: control characters, then invisible and text-direction ones (named).
  // The latter are looked for before trimming: JavaScript's trim() drops U+FEFF, Python's strip() keeps it.
  function characterError(value, raw) {
    if (patterns.control.test(value)) return message("control_characters");
    const invisible = raw.match(patterns.invisible);
    if (invisible) {
      const code = invisible[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      return message("invisible_characters", { code: `U+${code}` });
    }
    return "";
  }

  function titleError(raw, limit) {
    const value = raw.trim();
    const characters = characterError(value, raw);
    if (characters) return characters;
    if (length(value) > limit) return message("title_too_long", { limit, length: length(value) });
    return "";
  }

  function hostnameOf(url) {
    // As Python's urlsplit(url).hostname: the netloc without user info and port, lower-cased.
    const afterScheme = url.slice(url.indexOf("//") + 2);
    const netloc = afterScheme.split(/[/?#]/)[0];
    const host = netloc.slice(netloc.lastIndexOf("@") + 1);
    const hostname = host.startsWith("[") ? host.slice(1, host.indexOf("]") >>> 0) : host.split(":")[0];
    return { netloc, hostname: hostname.toLowerCase() };
  }

  function isValidIPv6(address) {
    try {
      new URL(`http://[${address}]/`);
      return true;
    } catch {
      return false;
    }
  }

  function djangoUrlValid(value) {
    // Django's URLValidator, step by step, with its own regular expression (sent by the server).
    if ([...rules.url_unsafe_characters].some((character) => value.includes(character))) return false;
    if (!rules.link_schemes.includes(value.split("://")[0].toLowerCase())) return false;
    if (!patterns.url.test(value)) return false;
    const { netloc, hostname } = hostnameOf(value);
    const bracketed = /^\[(.+)\](?::[0-9]{1,5})?$/.exec(netloc);
    if (bracketed && !isValidIPv6(bracketed[1])) return false;
    return hostname !== "" && length(hostname) <= rules.url_hostname_max_length;
  }

  function linkError(value) {
    if (length(value) > rules.url_max_length) {
      return message("link_too_long", { limit: rules.url_max_length, length: length(value) });
    }
    const scheme = patterns.scheme.exec(value);
    if (scheme && !rules.link_schemes.includes(scheme[1].toLowerCase())) {
      return message("link_scheme", { scheme: scheme[1].toLowerCase() });
    }
    return djangoUrlValid(value) ? "" : message("link_invalid");
  }

  function arnError(value) {
    if (length(value) > rules.arn_max_length) {
      return message("arn_too_long", { limit: rules.arn_max_length, length: length(value) });
    }
    return patterns.arn.test(value) ? "" : message("arn_invalid");
  }

  // validators.related_item_kind_detect: an ARN is an AWS resource; anything else is read as a link.
  const detectKind = (raw) => (raw.trim().toLowerCase().startsWith(rules.arn_prefix) ? "resource" : "link");

  function valueError(kind, raw) {
    const value = raw.trim();
    if (!value) return message("value_missing");
    const characters = characterError(value, raw);
    if (characters) return characters;
    return kind === "resource" ? arnError(value) : linkError(value);
  }

  function safeFileName(name) {
    const parts = name.replace(/\\/g, "/").split("/").filter((part) => part && part !== ".");
    let base = (parts[parts.length - 1] || "").normalize("NFKC");
    base = base.replace(patterns.unsafeFileName, "_").replace(/^[ .]+|[ .]+$/g, "");
    return base.slice(0, rules.file_name_max_length) || "attachment";
  }

  function roundHalfEven(value) {
    const floor = Math.floor(value);
    const fraction = value - floor;
    if (fraction > 0.5) return floor + 1;
    if (fraction < 0.5) return floor;
    return floor % 2 === 0 ? floor : floor + 1;
  }

  function humanSize(size) {
    // validators.human_size, with Python's round-half-even formatting.
    const units = ["bytes", "KB", "MB", "GB"];
    for (const unit of units) {
      if (size < 1024 || unit === "GB") {
        if (unit === "bytes") return `${roundHalfEven(size)} ${unit}`;
        return `${(roundHalfEven(size * 10) / 10).toFixed(1)} ${unit}`.replace(".0 ", " ");
      }
      size /= 1024;
    }
    return "";
  }

  function suffixes(name) {
    // Python's PurePosixPath(name).suffixes, lower-cased and without their dots.
    if (name.endsWith(".")) return [];
    return name.replace(/^\.+/, "").split(".").slice(1).map((suffix) => suffix.toLowerCase());
  }

  function fileError(name, size) {
    const safe = safeFileName(name);
    if (/[\/\\\x00]/.test(name) || name.includes("..")) return message("file_name_path", { name: safe });
    if (size === 0) return message("file_empty", { name: safe });
    if (size > rules.max_file_bytes) {
      return message("file_too_big", { name: safe, size: humanSize(size), limit: humanSize(rules.max_file_bytes) });
    }
    const all = suffixes(safe);
    const extension = all.length ? all[all.length - 1] : "";
    if (!rules.allowed_extensions.includes(extension)) {
      return message("file_type", { name: safe, allowed: rules.allowed_extensions_label });
    }
    const disguise = all.slice(0, -1).find((suffix) => rules.disguising_extensions.includes(suffix));
    if (disguise) return message("file_disguised", { name: safe, extension: disguise });
    return "";
  }

  // For the browser tests, which compare these verdicts with the server's.
  window.PortalDeclare = { valueError, titleError, fileError, humanSize, safeFileName, detectKind };

  // --- Showing errors at the field --------------------------------------------------------------------

  function showError(input, text) {
    const slot = document.getElementById(`${input.id}-error`);
    if (!slot) return;
    slot.textContent = text;
    slot.hidden = !text;
    const field = input.closest(".item-field, .field");
    if (text) {
      input.setAttribute("aria-invalid", "true");
      field?.classList.add("has-error");
    } else {
      input.removeAttribute("aria-invalid");
      field?.classList.remove("has-error");
    }
  }

  // The kind chosen for a row ("" when it is left to what is typed, as it is unless someone says otherwise)…
  const chosenKind = (row) => $("select[name$='-kind']", row).value;
  // …and the kind the row has: the chosen one, or the one read from its value.
  const rowKind = (row) => chosenKind(row) || detectKind($("input[data-validate=value]", row).value);
  const KIND_NAMES = { link: "Link", resource: "AWS resource" };

  function showDetectedKind(row) {
    const tag = $("[data-detected-kind]", row);
    const value = $("input[data-validate=value]", row).value;
    tag.hidden = chosenKind(row) !== "" || value.trim() === "";
    tag.textContent = tag.hidden ? "" : KIND_NAMES[detectKind(value)];
  }

  function checkRow(row, { quiet = false } = {}) {
    const kind = rowKind(row);
    const value = $("input[data-validate=value]", row);
    const file = $("input[data-validate=file]", row);
    const title = $("input[data-validate=title]", row);
    const used = rowIsUsed(row);
    let valueText = "";
    let fileText = "";
    if (kind === "file") {
      const chosen = file.files[0];
      if (chosen) fileText = fileError(chosen.name, chosen.size);
      else if (!quiet) fileText = message("file_missing");
    } else if (used && !(quiet && value.value.trim() === "")) {
      valueText = valueError(kind, value.value);
    }
    showDetectedKind(row);
    showError(value, valueText);
    showError(file, fileText);
    showError(title, titleError(title.value, rules.item_title_max_length));
    return !valueText && !fileText && !titleError(title.value, rules.item_title_max_length);
  }

  function rowIsUsed(row) {
    return !["", "link"].includes(chosenKind(row)) || $("input[data-validate=value]", row).value.trim() !== "" ||
      $("input[data-validate=title]", row).value.trim() !== "";
  }

  function checkCounts() {
    const rows = $$("[data-item-row]");
    const used = rows.filter(rowIsUsed).length;
    const files = rows.filter((row) => chosenKind(row) === "file").length;
    let text = "";
    if (used > rules.items_max) text = message("too_many_items", { limit: rules.items_max });
    else if (files > rules.max_files) text = message("too_many_files", { limit: rules.max_files, count: files });
    const slot = document.getElementById("items-error");
    slot.textContent = text;
    slot.hidden = !text;
    const counts = document.getElementById("item-counts");
    if (counts) {
      counts.textContent = `${used} of ${rules.items_max} items · ${files} of ${rules.max_files} files`;
    }
    const add = document.getElementById("add-row");
    if (add) add.disabled = rows.length >= rules.items_max;
    return !text;
  }

  // --- Rows: add, remove, renumber -----------------------------------------------------------------------

  function renumber() {
    const rows = $$("[data-item-row]");
    rows.forEach((row, index) => {
      for (const element of $$("[name], [id], [for], [aria-describedby], [data-error-for]", row)) {
        for (const attribute of ["name", "id", "for", "aria-describedby", "data-error-for"]) {
          const current = element.getAttribute(attribute);
          if (current) element.setAttribute(attribute, current.replace(/items-\d+-/g, `items-${index}-`));
        }
      }
      $$("[data-row-number]", row).forEach((span) => { span.textContent = String(index + 1); });
    });
    $("input[name=items-TOTAL_FORMS]").value = String(rows.length);
    checkCounts();
  }

  // Where the keyboard goes in a row: its link or ARN, or for a file its "Remove file".
  const rowFocus = (row) => (chosenKind(row) === "file" ? $("[data-clear-file]", row) : $("input[data-validate=value]", row));

  function addRow({ before = null, focus = true } = {}) {
    const list = document.getElementById("item-rows");
    const index = $$("[data-item-row]").length;
    if (index >= rules.items_max) return null;
    const html = document.getElementById("item-row-template").innerHTML
      .replace(/__prefix__/g, String(index))
      .replace(/__number__/g, String(index + 1));
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const row = holder.content.firstElementChild;
    list.insertBefore(row, before);
    renumber();
    syncRow(row);
    if (focus) rowFocus(row).focus();
    return row;
  }

  // --- Attach files: chosen several at once, dropped on the page, or pasted (a screenshot) -------------------

  function pastedName(file) {
    // A pasted screenshot comes as "image.png": name it for when it was taken, so that responders can tell them apart.
    if (!file.type.startsWith("image/") || !/^image\.\w+$/.test(file.name)) return file.name;
    const now = new Date();
    const two = (number) => String(number).padStart(2, "0");
    const stamp = `${now.getFullYear()}${two(now.getMonth() + 1)}${two(now.getDate())}-` +
      `${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}`;
    return `screenshot-${stamp}.${file.name.split(".").pop()}`;
  }

  function attachFile(file) {
    // A file row each, before the empty row left for a link (if there is one), so that row stays at the end.
    const rows = $$("[data-item-row]");
    const last = rows[rows.length - 1];
    const spare = last && !rowIsUsed(last) && chosenKind(last) === "" ? last : null;
    const row = addRow({ before: spare, focus: false });
    if (!row) return null;
    $("select[name$='-kind']", row).value = "file";
    const transfer = new DataTransfer();
    transfer.items.add(file);
    $("input[type=file]", row).files = transfer.files;
    syncRow(row);
    checkRow(row, { quiet: true });
    return row;
  }

  function attachFiles(files, { pasted = false } = {}) {
    const added = Array.from(files).map((file) => {
      const name = pasted ? pastedName(file) : file.name;
      return attachFile(name === file.name ? file : new File([file], name, { type: file.type }));
    }).filter(Boolean);
    checkCounts();
    updateSummary();
    refreshPreviewSoon();
    return added;
  }

  function removeRow(row) {
    const rows = $$("[data-item-row]");
    const index = rows.indexOf(row);
    row.remove();
    renumber();
    // Keep the keyboard where it was: on the next row, the previous one, or the add button.
    const remaining = $$("[data-item-row]");
    const next = remaining[index] || remaining[index - 1];
    (next ? rowFocus(next) : document.getElementById("add-row"))?.focus();
    refreshPreviewSoon();
  }

  function syncRow(row) {
    // Files chosen (or kept by hx-preserve) show their name, size and a way to remove them.
    const input = $("input[type=file]", row);
    const status = $("[data-file-status]", row);
    const chosen = input.files[0];
    status.hidden = !chosen;
    if (chosen) {
      $("[data-file-label]", status).textContent = `${safeFileName(chosen.name)} · ${humanSize(chosen.size)}`;
    }
    $("[data-clear-file]", status).setAttribute("aria-label", chosen ? `Remove file ${safeFileName(chosen.name)}` : "Remove file");
  }

  // --- The plan's defaults, and what overwrites them --------------------------------------------------------

  let planDefaults = null; // {title, impact} of the chosen plan

  function chosenPlanRadio() {
    return $("input[name=response_plan]:checked");
  }

  function impactLabel(value) {
    const input = $(`input[name=impact][value="${value}"]`);
    if (!input) return "";
    const label = $(`label[for="${input.id}"]`);
    return `${value} – ${$(".impact-name", label).textContent}`;
  }

  function markSources() {
    const title = document.getElementById("id_title");
    const titleTag = document.getElementById("title-source");
    const impactTag = document.getElementById("impact-source");
    const note = document.getElementById("impact-override");
    const reset = document.getElementById("title-reset");
    if (!title || !titleTag) return;
    updateSummary();
    if (!planDefaults) {
      titleTag.hidden = impactTag.hidden = note.hidden = reset.hidden = true;
      return;
    }
    const titleValue = title.value.trim();
    const titleOverrides = titleValue !== "" && titleValue !== planDefaults.title;
    titleTag.hidden = false;
    titleTag.dataset.source = titleOverrides ? "override" : "plan";
    titleTag.textContent = titleOverrides ? "Your own — overrides the plan's" : "From the plan";
    reset.hidden = !titleOverrides && titleValue !== "";
    if (titleValue === "") reset.hidden = false;

    const impact = $("input[name=impact]:checked");
    const impactOverrides = impact && impact.value !== planDefaults.impact;
    impactTag.hidden = false;
    impactTag.dataset.source = impactOverrides ? "override" : "plan";
    impactTag.textContent = impactOverrides ? "Your choice — overrides the plan's" : "From the plan";
    $$("[data-plan-default]").forEach((tag) => { tag.hidden = tag.dataset.planDefault !== planDefaults.impact; });
    note.hidden = !impactOverrides;
    note.replaceChildren();
    if (impactOverrides) {
      const strong = document.createElement("strong");
      strong.textContent = "Differs from the plan:";
      note.append(strong, ` the plan's impact is ${impactLabel(planDefaults.impact)}; yours (${impactLabel(impact.value)}) overwrites it.`);
    }
  }

  // --- The bar beside Declare: what will be declared ------------------------------------------------------

  function updateSummary() {
    const slot = document.getElementById("declare-summary");
    if (!slot) return;
    const radio = chosenPlanRadio();
    const part = (name, text) => {
      const span = document.createElement("span");
      span.className = `summary-${name}`;
      span.textContent = text;
      return span;
    };
    if (!radio) {
      slot.replaceChildren(part("empty", "Choose a response plan first."));
      return;
    }
    const title = document.getElementById("id_title")?.value.trim() || radio.dataset.defaultTitle;
    const impact = $("input[name=impact]:checked")?.value || radio.dataset.defaultImpact;
    const plan = $(".plan-name", $(`label[for="${radio.id}"]`))?.textContent || "";
    slot.replaceChildren(
      part("plan", plan), " ", part("impact", `Impact ${impactLabel(impact)}`), " ", part("title", `“${title}”`),
    );
  }

  function applyPlan({ initial = false } = {}) {
    const radio = chosenPlanRadio();
    const previous = planDefaults;
    planDefaults = radio ? { title: radio.dataset.defaultTitle, impact: radio.dataset.defaultImpact } : null;
    if (!planDefaults || initial) {
      markSources();
      return;
    }
    // The plan's values fill in what the person has not set themselves (or left as the previous plan's).
    const title = document.getElementById("id_title");
    if (title.value.trim() === "" || (previous && title.value.trim() === previous.title)) {
      title.value = planDefaults.title;
      showError(title, "");
    }
    const impact = $("input[name=impact]:checked");
    if (!impact || (previous && impact.value === previous.impact)) {
      const planImpact = $(`input[name=impact][value="${planDefaults.impact}"]`);
      if (planImpact) planImpact.checked = true;
    }
    markSources();
  }

  // --- Preview ------------------------------------------------------------------------------------------

  let previewTimer = null;

  function refreshPreviewSoon() {
    const details = document.getElementById("preview-details");
    if (!details || !details.open || !window.htmx) return;
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => window.htmx.trigger("#preview", "refresh-preview"), 350);
  }

  // --- Upload progress ----------------------------------------------------------------------------------

  function showProgress(loaded, total) {
    const overall = document.getElementById("upload-progress");
    if (overall && total) overall.value = Math.round((loaded / total) * 100);
    // The multipart body carries the files in row order: share the bytes sent among them by size.
    const inputs = $$("[data-item-row] input[type=file]").filter((input) => input.files[0]);
    const sizes = inputs.map((input) => input.files[0].size);
    const sum = sizes.reduce((a, b) => a + b, 0) || 1;
    const overhead = Math.max(total - sum, 0);
    let start = overhead / 2;
    inputs.forEach((input, index) => {
      const bar = $("[data-file-progress]", input.closest("[data-item-row]"));
      const done = Math.min(Math.max(loaded - start, 0), sizes[index]);
      bar.hidden = false;
      bar.value = sizes[index] ? Math.round((done / sizes[index]) * 100) : 100;
      bar.textContent = `${bar.value}%`;
      bar.setAttribute("aria-label", `Upload of ${safeFileName(input.files[0].name)}`);
      start += sizes[index];
    });
  }

  // --- Wiring ----------------------------------------------------------------------------------------

  function init({ afterSwap = false } = {}) {
    if (!loadRules()) return;
    $$("[data-item-row]").forEach((row) => {
      syncRow(row);
      showDetectedKind(row);
    });
    applyPlan({ initial: true });
    checkCounts();
    showDeclaredFromHere();
    if (afterSwap) {
      const summary = document.getElementById("declared-already") || document.getElementById("error-summary");
      if (summary) summary.focus();
    }
  }

  // --- A page restored by Back after declaring knows it declared ---------------------------------------------

  const declaredKey = (key) => `portal-declared:${key}`;

  function formKey() {
    return $("#declare-form input[name=idempotency_key]")?.value || "";
  }

  function showDeclaredFromHere() {
    let url = null;
    try {
      url = formKey() && sessionStorage.getItem(declaredKey(formKey()));
    } catch {
      return; // storage refused: the server still answers this form's key with its declaration
    }
    const form = document.getElementById("declare-form");
    if (!url || !form || document.getElementById("declared-from-here")) return;
    const notice = document.createElement("div");
    notice.className = "notice notice-warn";
    notice.id = "declared-from-here";
    notice.setAttribute("role", "alert");
    const title = document.createElement("p");
    title.className = "notice-title";
    title.textContent = "You already declared this incident from this page.";
    const link = document.createElement("a");
    link.href = url;
    link.textContent = "Open your declaration";
    const more = document.createElement("p");
    more.append(link, " — sending this form again only opens the same declaration. For a separate incident, ");
    const fresh = document.createElement("a");
    fresh.href = form.getAttribute("action");
    fresh.textContent = "start a new form";
    more.append(fresh, ".");
    notice.append(title, more);
    form.prepend(notice);
  }

  document.addEventListener("htmx:afterRequest", (event) => {
    // Remembered in this tab before htmx follows the redirect, for the page Back restores.
    const redirect = event.detail.xhr?.getResponseHeader("HX-Redirect");
    if (event.detail.elt?.id !== "declare-form" || !redirect || !formKey()) return;
    try {
      sessionStorage.setItem(declaredKey(formKey()), redirect);
    } catch {
      // storage refused: the server still answers this form's key with its declaration
    }
  });

  window.addEventListener("pageshow", (event) => {
    if (!event.persisted || !rules) return;
    showDeclaredFromHere();
    // A page from the back/forward cache shows the duplicate guard as it was: ask for it afresh.
    if (chosenPlanRadio() && window.htmx) window.htmx.trigger("#plan-options", "change");
  });

  document.addEventListener("DOMContentLoaded", () => init());

  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    if (target && target.id === "declare-body") init({ afterSwap: true });
    if (target && target.id === "plan-options") applyPlan({ initial: true });
  });

  document.addEventListener("change", (event) => {
    if (!rules) return;
    const element = event.target;
    const row = element.closest("[data-item-row]");
    if (element.id === "id_attachments") {
      // Each chosen file moves to a row of its own (with its title, checks and progress); the picker empties.
      attachFiles(element.files);
      element.value = "";
    }
    if (element.name === "response_plan") applyPlan();
    if (element.name === "impact") markSources();
    if (row) {
      if (element.matches("input[type=file]")) syncRow(row);
      if (element.matches("select")) {
        // A new kind asks a new question: judge the row afresh, once the person has answered it.
        checkRow(row, { quiet: true });
      } else {
        checkRow(row, { quiet: !element.matches("input[type=file]") && !element.value });
      }
      checkCounts();
    }
    refreshPreviewSoon();
  });

  document.addEventListener("input", (event) => {
    if (!rules) return;
    const element = event.target;
    const row = element.closest("[data-item-row]");
    if (element.id === "id_title") {
      showError(element, titleError(element.value, rules.title_max_length));
      markSources();
    }
    if (row) {
      checkRow(row, { quiet: true });
      checkCounts();
    }
    refreshPreviewSoon();
  });

  document.addEventListener("focusout", (event) => {
    // Leaving a used row with its value still missing is worth saying.
    const row = event.target.closest?.("[data-item-row]");
    if (rules && row && !row.contains(event.relatedTarget)) checkRow(row, { quiet: !rowIsUsed(row) || rowKind(row) === "file" });
  });

  document.addEventListener("click", (event) => {
    const element = event.target.closest("button");
    if (!element || !rules) return;
    if (element.id === "add-row") {
      event.preventDefault();
      addRow();
    } else if (element.matches("[data-remove-row]")) {
      removeRow(element.closest("[data-item-row]"));
    } else if (element.matches("[data-clear-file]")) {
      const row = element.closest("[data-item-row]");
      const input = $("input[type=file]", row);
      input.value = "";
      syncRow(row);
      checkRow(row, { quiet: true });
      checkCounts();
      input.focus();
      refreshPreviewSoon();
    } else if (element.id === "title-reset" && planDefaults) {
      const title = document.getElementById("id_title");
      title.value = planDefaults.title;
      showError(title, "");
      markSources();
      title.focus();
      refreshPreviewSoon();
    }
  });

  // --- Enter moves on; only the button (or Ctrl/⌘+Enter) declares ------------------------------------------

  const ENTER_SUBMITS = /^(text|search|url|email|tel|number|password|radio|checkbox|date|time)$/;

  function moveOn(element) {
    const form = element.form;
    const row = element.closest("[data-item-row]");
    if (row) {
      // In a related item, Enter goes to the next item, adding one when this is the last.
      const rows = $$("[data-item-row]");
      const next = rows.slice(rows.indexOf(row) + 1).find((other) => chosenKind(other) !== "file");
      if (next) $("input[data-validate=value]", next).focus();
      else addRow();
      return;
    }
    const fields = $$("input, select, textarea, button", form).filter(
      (field) => !field.disabled && field.type !== "hidden" && field.tabIndex >= 0 && field.offsetParent !== null &&
        !(field.type === "radio" && field.name === element.name),
    );
    const after = fields.filter((field) => element.compareDocumentPosition(field) & Node.DOCUMENT_POSITION_FOLLOWING);
    const target = after.find((field) => field.type !== "radio" || field.checked || !$(`input[name="${field.name}"]:checked`, form));
    target?.focus();
  }

  document.addEventListener("keydown", (event) => {
    const element = event.target;
    if (event.key !== "Enter" || !rules || event.isComposing) return;
    const form = element.form;
    if (!form || form.id !== "declare-form") return;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      form.requestSubmit($(".submit-declare", form));
      return;
    }
    if (element.tagName === "INPUT" && ENTER_SUBMITS.test(element.type)) {
      event.preventDefault();
      moveOn(element);
    }
  });

  // Files dropped anywhere on the page are attached (never opened by the browser in place of the form).
  const carriesFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  const attachable = (event) => rules && document.getElementById("attach-zone") && carriesFiles(event);
  let dragDepth = 0;

  function showDropping(on) {
    document.getElementById("attach-zone")?.classList.toggle("dropping", on);
  }

  document.addEventListener("dragenter", (event) => {
    if (!attachable(event)) return;
    dragDepth += 1;
    showDropping(true);
  });
  document.addEventListener("dragleave", (event) => {
    if (!attachable(event)) return;
    dragDepth = Math.max(dragDepth - 1, 0);
    if (!dragDepth) showDropping(false);
  });
  document.addEventListener("dragover", (event) => {
    if (!attachable(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!attachable(event)) return;
    event.preventDefault();
    dragDepth = 0;
    showDropping(false);
    attachFiles(event.dataTransfer.files);
  });

  // A screenshot pasted anywhere on the form (Ctrl+V of an image) is attached; pasted text goes where it always goes.
  document.addEventListener("paste", (event) => {
    if (!rules || !document.getElementById("attach-zone")) return;
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return;
    // Text copied from office programs carries a picture of itself too: into a text field, the text is what is meant.
    const intoText = event.target.matches?.("input:not([type=file]), textarea");
    if (intoText && event.clipboardData.types.includes("text/plain")) return;
    event.preventDefault();
    attachFiles(files, { pasted: true });
  });

  document.addEventListener("toggle", (event) => {
    if (event.target.id === "preview-details" && event.target.open && window.htmx) {
      window.htmx.trigger("#preview", "refresh-preview");
    }
  }, true);

  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt.id !== "preview") return;
    // The preview needs the chosen files' names, never their bytes.
    const data = event.detail.formData;
    for (const [name, value] of Array.from(data.entries())) {
      if (value instanceof File) {
        data.delete(name);
        if (value.name) data.set(`${name}_name`, value.name);
      }
    }
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.id !== "declare-form" || !rules) return;
    // A file the server would refuse is not worth uploading: say so at the field instead.
    const rows = $$("[data-item-row]");
    const bad = rows.filter((row) => {
      const file = $("input[type=file]", row).files[0];
      return chosenKind(row) === "file" && file && fileError(file.name, file.size);
    });
    rows.forEach((row) => checkRow(row, { quiet: true }));
    if (bad.length || !checkCounts()) {
      event.preventDefault();
      const first = bad.length ? rowFocus(bad[0]) : document.getElementById("add-row");
      first.focus();
    }
  });

  document.addEventListener("htmx:xhr:progress", (event) => {
    if (event.detail.elt?.id === "declare-form" || event.target.id === "declare-form") {
      showProgress(event.detail.loaded, event.detail.total);
    }
  });
})();
