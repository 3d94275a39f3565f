// Every page: mark that scripts run (CSS shows script-only controls and hides their no-script stand-ins),
// and disable a form's submit buttons once it is sent, so that a double click sends it once.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("submit", (event) => {
  const form = event.target;
  // htmx-driven forms are guarded by hx-sync / hx-disabled-elt instead.
  if (event.defaultPrevented || form.hasAttribute("hx-post")) return;
  if (form.dataset.submitted) {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "true";
  // Disable after this event, or the clicked button's name/value would be left out of the submission.
  setTimeout(() => form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; }), 0);
});

// Pages restored from the back/forward cache must be usable again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-submitted]").forEach((form) => {
    delete form.dataset.submitted;
    form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = false; });
  });
});
