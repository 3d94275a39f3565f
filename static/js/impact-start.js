// The declare page's "Impact started at": the browser's time zone goes with the form (the hidden time_zone field),
// and the page names it; the picker offers only the allowed days. Without this file the portal's zone is used and
// named instead.
"use strict";

(() => {
  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function localValue(moment) {
    return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
  }

  function setUp() {
    const field = document.getElementById("impact-start-field");
    if (!field) return;
    let zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch {
      return;
    }
    const hidden = field.querySelector("input[name=time_zone]");
    if (!zone || !hidden) return;
    hidden.value = zone;
    document.getElementById("impact-start-zone").textContent = zone;
    const input = field.querySelector("input[type=datetime-local]");
    const days = Number(input.dataset.maxDays);
    const now = new Date();
    input.max = localValue(now);
    input.min = localValue(new Date(now.getTime() - days * 86400000));
  }

  document.addEventListener("DOMContentLoaded", setUp);
  // The form's part of the page comes back from the server after a submit with errors.
  document.addEventListener("htmx:afterSettle", setUp);
})();
