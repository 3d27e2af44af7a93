// Command palette: Ctrl/Cmd+K opens it; results come from /palette/ through htmx.
(function () {
  function dialog() { return document.getElementById("palette"); }
  function items() { return Array.from(dialog().querySelectorAll(".palette-results a")); }
  function select(index) {
    const all = items();
    all.forEach((a, i) => a.setAttribute("aria-selected", i === index ? "true" : "false"));
    if (all[index]) all[index].scrollIntoView({ block: "nearest" });
  }
  function selectedIndex() { return items().findIndex((a) => a.getAttribute("aria-selected") === "true"); }
  function open() {
    const d = dialog();
    if (!d || d.open) return;
    d.showModal();
    const input = d.querySelector("input");
    input.value = "";
    input.focus();
    htmx.trigger(input, "refresh");
  }
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      open();
      return;
    }
    const d = dialog();
    if (!d || !d.open) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const count = items().length;
      if (!count) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      select((selectedIndex() + step + count) % count);
    } else if (event.key === "Enter") {
      const chosen = items()[Math.max(0, selectedIndex())];
      if (chosen) { event.preventDefault(); window.location.href = chosen.href; }
    }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-open-palette]")) { open(); }
    const d = dialog();
    if (d && event.target === d) d.close();  // a click on the backdrop closes it
    if (event.target.closest("[data-toggle-nav]")) {
      document.body.classList.toggle("nav-open");
    } else if (document.body.classList.contains("nav-open") && !event.target.closest(".sidebar")) {
      document.body.classList.remove("nav-open");  // a click outside the drawer closes it
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.classList && event.target.classList.contains("palette-results")) select(0);
  });
})();
