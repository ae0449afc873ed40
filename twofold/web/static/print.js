// "Print" buttons (no inline script: the CSP allows only files from this origin).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
