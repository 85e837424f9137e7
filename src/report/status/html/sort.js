(function () {
  function key(cell) {
    return cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent.trim();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var numeric = th.getAttribute('data-type') === 'number';
        rows.sort(function (a, b) {
          var x = key(a.cells[i]), y = key(b.cells[i]), r;
          if (numeric) {
            var nx = parseFloat(x), ny = parseFloat(y);
            if (isNaN(nx) && isNaN(ny)) r = 0;
            else if (isNaN(nx)) return 1;
            else if (isNaN(ny)) return -1;
            else r = nx - ny;
          } else {
            r = x.localeCompare(y, undefined, { numeric: true });
          }
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // A link can carry a sort: #sort=targets:7 (8th column ascending), #sort=hosts:3:desc.
  var m = /^#sort=([a-z]+):(\d+)(:desc)?$/.exec(location.hash);
  var table = m && document.getElementById(m[1]);
  if (table && table.classList.contains('sortable')) {
    var th = table.tHead.rows[0].cells[+m[2]];
    if (th) { th.click(); if (m[3]) th.click(); }
  }
})();
