// Segment builder (templates/segments/builder.html). The server draws the editor; this only
// (1) filters a new condition's "what to filter on" lists as the member types, Enter picking
// the first match; (2) makes Enter in a condition's value count at once instead of saving the
// segment; (3) keeps a preview request that fires late (after its 500 ms delay) from aborting
// a structural change already on its way: the form asks for a fresh count after that change.
(function () {
  "use strict";

  function filterPicker(input) {
    var picker = input.closest("[data-picker]");
    var words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var anyShown = false;
    picker.querySelectorAll("[data-picker-group]").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll("[data-picker-item]").forEach(function (item) {
        var text = item.textContent.toLowerCase();
        var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
        item.hidden = !hit;
        if (hit) shown++;
      });
      group.hidden = shown === 0;
      if (shown) anyShown = true;
    });
    var none = picker.querySelector("[data-picker-none]");
    if (none) none.hidden = anyShown;
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-picker-search]")) {
      filterPicker(event.target);
    }
  });

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !input.matches || input.matches("textarea")) return;
    if (!input.matches("[data-picker-search]")) {
      // Enter in a condition's value counts now instead of saving the segment.
      if (input.matches("input") && input.closest("#rules-editor")) {
        event.preventDefault();
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }
      return;
    }
    event.preventDefault(); // not the form's default "save"
    var items = input.closest("[data-picker]").querySelectorAll("[data-picker-item]");
    for (var i = 0; i < items.length; i++) {
      if (!items[i].hidden && !items[i].closest("[data-picker-group]").hidden) {
        items[i].querySelector("button").click();
        return;
      }
    }
  });

  var structural = null; // the XMLHttpRequest of the last structural action

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var form = elt.closest && elt.closest("form[data-builder]");
    // The preview's details (data-details-slot) read the rules without changing them.
    if (form && elt !== form && !elt.hasAttribute("data-details-slot")) structural = event.detail.xhr;
  });

  // htmx:confirm comes before hx-sync, so cancelling here aborts nothing.
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (!elt.matches || !elt.matches("form[data-builder]")) return;
    if (structural && structural.readyState > 0 && structural.readyState < 4) {
      event.preventDefault();
    }
  });
})();
