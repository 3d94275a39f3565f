// A declaration's page: the tab's title follows the live status, the status gets the keyboard after declaring,
// and the ARN and the page's link copy with one click. The page works without this file.
"use strict";

(() => {
  function followStatus() {
    const status = document.getElementById("status");
    if (status?.dataset.tabTitle) document.title = status.dataset.tabTitle;
  }

  document.addEventListener("DOMContentLoaded", () => {
    followStatus();
    // Arriving from the declare page (a redirect after declaring): the status is what the person waits for.
    let from = "";
    try {
      from = document.referrer ? new URL(document.referrer).pathname : "";
    } catch {
      from = "";
    }
    const declarePath = document.querySelector(".breadcrumb a[data-declare]")?.getAttribute("href") || "/declare/";
    if (from === declarePath) document.getElementById("live-status")?.focus();
  });

  document.addEventListener("htmx:afterSettle", followStatus);

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const status = document.querySelector("[data-copy-status]");
    const what = button.textContent.replace(/^Copy /, "");
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      if (status) status.textContent = `Copied the ${what}.`;
    } catch {
      if (status) status.textContent = `Could not copy the ${what}: select it and copy it by hand.`;
    }
  });
})();
