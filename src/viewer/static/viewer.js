// pg-auditlog viewer: progressive enhancement only. The pages work without this script;
// it adds live updates (server-sent events), pause, and keyboard shortcuts.
(function () {
  'use strict';

  // --- Filters: leave empty fields out of the URL so shared views stay short.
  var form = document.querySelector('form.filters');
  if (form) {
    form.addEventListener('submit', function () {
      Array.prototype.forEach.call(form.querySelectorAll('input'), function (input) {
        if (input.value.trim() === '') input.disabled = true;
      });
    });
    window.addEventListener('pageshow', function () {
      Array.prototype.forEach.call(form.querySelectorAll('input'), function (input) { input.disabled = false; });
    });
  }

  // --- Live updates.
  var live = document.getElementById('live');
  var tbody = document.getElementById('entries');
  if (live && tbody && typeof EventSource === 'function') {
    var status = document.getElementById('live-status');
    var toggle = document.getElementById('live-toggle');
    var url = live.getAttribute('data-stream');
    var paused = false;
    var queue = [];
    var source = null;
    var retryTimer = null;
    var seen = {};
    Array.prototype.forEach.call(tbody.querySelectorAll('tr[data-id]'), function (tr) { seen[tr.getAttribute('data-id')] = true; });

    var show = function (state, text) {
      live.setAttribute('data-state', state);
      status.textContent = text;
    };
    var insert = function (rowHtml) {
      var t = document.createElement('template');
      t.innerHTML = rowHtml.trim();
      var row = t.content.firstElementChild;
      if (!row) return;
      var id = row.getAttribute('data-id');
      if (seen[id]) return;
      seen[id] = true;
      row.classList.add('fresh');
      tbody.insertBefore(row, tbody.firstElementChild);
      var empty = document.getElementById('empty');
      if (empty) empty.remove();
    };
    var connect = function () {
      source = new EventSource(url, { withCredentials: true });
      source.onopen = function () { if (!paused) show('live', 'Live'); };
      source.addEventListener('entry', function (event) {
        var data = JSON.parse(event.data);
        if (paused) {
          queue.push(data.html);
          show('paused', 'Paused · ' + queue.length + ' new');
        } else {
          insert(data.html);
        }
      });
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) {
          // The server refused the stream (restarted, token gone): try again in a while.
          show('reconnecting', 'Reconnecting…');
          source = null;
          clearTimeout(retryTimer);
          retryTimer = setTimeout(connect, 5000);
        } else {
          show('reconnecting', 'Reconnecting…');
        }
      };
    };
    var setPaused = function (value) {
      paused = value;
      toggle.textContent = paused ? 'Resume' : 'Pause';
      toggle.setAttribute('aria-pressed', paused ? 'true' : 'false');
      if (paused) {
        show('paused', 'Paused' + (queue.length ? ' · ' + queue.length + ' new' : ''));
      } else {
        queue.forEach(insert);
        queue = [];
        show(source && source.readyState === EventSource.OPEN ? 'live' : 'reconnecting', source && source.readyState === EventSource.OPEN ? 'Live' : 'Reconnecting…');
      }
    };
    toggle.hidden = false;
    toggle.addEventListener('click', function () { setPaused(!paused); });
    show('connecting', 'Connecting…');
    connect();
    window.addEventListener('keydown', function (event) {
      if (event.key === 'p' && !typing(event)) { setPaused(!paused); event.preventDefault(); }
    });
  }

  // --- Keyboard: "/" search, j/k move through entries, Enter opens (a focused link).
  function typing(event) {
    var t = event.target;
    return event.ctrlKey || event.metaKey || event.altKey ||
      (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable));
  }
  window.addEventListener('keydown', function (event) {
    if (typing(event)) return;
    if (event.key === '/') {
      var q = document.getElementById('q') || document.querySelector('form input');
      if (q) { q.focus(); q.select(); event.preventDefault(); }
      return;
    }
    if (event.key !== 'j' && event.key !== 'k') return;
    var rows = Array.prototype.slice.call(document.querySelectorAll('table.entries tbody tr'));
    if (rows.length === 0) return;
    var current = document.querySelector('table.entries tr.current');
    var i = rows.indexOf(current);
    i = event.key === 'j' ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
    if (current) current.classList.remove('current');
    rows[i].classList.add('current');
    var link = rows[i].querySelector('a.entry-link');
    if (link) link.focus();
    event.preventDefault();
  });
})();
