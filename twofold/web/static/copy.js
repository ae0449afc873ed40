// "Copy" buttons: <button data-copy="ID" [data-copy-compact]> copies the text of the element #ID (a typed key, a list of
// backup codes) and says so in its own live region. No inline script: the CSP allows only this origin.
for (const button of document.querySelectorAll("[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const said = document.getElementById(button.dataset.copy + "-copied");
  if (!source || !navigator.clipboard) { continue; }
  button.hidden = false;
  button.addEventListener("click", () => {
    const items = source.querySelectorAll("li");
    let text = items.length
      ? Array.from(items, (item) => item.textContent.trim()).join("\n")
      : source.textContent.trim();
    if ("copyCompact" in button.dataset) { text = text.replace(/\s+/g, ""); }  // a key, without its grouping
    navigator.clipboard.writeText(text).then(
      () => { if (said) { said.textContent = "Copied."; } },
      () => { if (said) { said.textContent = "Could not copy: select the text and copy it instead."; } }
    );
  });
}
