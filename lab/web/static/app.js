// stblab web: the little script there is. Streams a running check's log into the case page
// (server-sent events) and reloads the page when the check ends, so the verdict shows.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const job of document.querySelectorAll("section.job[data-state='running']")) {
    const log = job.querySelector(".job-log");
    const state = job.querySelector(".job-state");
    log.textContent = "";
    const source = new EventSource(job.dataset.events);
    source.addEventListener("line", (ev) => {
      log.textContent += JSON.parse(ev.data) + "\n";
      log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("end", (ev) => {
      source.close();
      const end = JSON.parse(ev.data);
      state.textContent = end.state + (end.exit_code === null ? "" : " (exit " + end.exit_code + ")");
      job.dataset.state = end.state;
      window.setTimeout(() => window.location.reload(), 500);
    });
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
});
