// Customers screen: select rows on the page, count the selection, "all matching" ticks every row.
(function () {
  function rows() { return document.querySelectorAll('#bulk input[name="ids"]'); }
  function refresh() {
    var label = document.querySelector('[data-selected-count]');
    if (!label) return;
    var all = document.querySelector('[data-all-matching]');
    var picked = Array.prototype.filter.call(rows(), function (box) { return box.checked; }).length;
    if (all && all.checked) label.textContent = 'All customers matching this filter selected.';
    else if (picked) label.textContent = picked + ' selected on this page.';
    else label.textContent = 'Select customers to act on them.';
  }
  document.addEventListener('change', function (event) {
    var target = event.target;
    if (target.matches('[data-select-page]')) {
      rows().forEach(function (box) { box.checked = target.checked; });
    } else if (target.matches('[data-all-matching]')) {
      rows().forEach(function (box) { box.checked = target.checked; });
      var page = document.querySelector('[data-select-page]');
      if (page) page.checked = target.checked;
    }
    if (target.closest('#bulk')) refresh();
  });
  document.addEventListener('htmx:afterSwap', refresh);
})();
