// airlock inbox: live updates. The page works without this script (forms
// post and redirect); with it, the lists follow the server's event stream:
// on any change the server-rendered fragment is fetched again (all
// escaping and masking stay on the server) and swapped in, keeping what
// the approver was typing.
'use strict';

(function () {
  const live = document.querySelector('[data-live]');
  const status = document.getElementById('live-status');
  if (!live || !window.EventSource) {
    return;
  }
  const say = (text) => {
    if (status) {
      status.textContent = text;
    }
  };

  // Reasons being typed, by request id, which one had the focus, and
  // which folded arguments the approver opened or closed.
  const keep = () => {
    const saved = new Map();
    const folds = new Map();
    let focused = null;
    for (const input of live.querySelectorAll('form input[name="reason"]')) {
      const card = input.closest('[data-id]');
      if (!card) continue;
      saved.set(card.dataset.id, input.value);
      if (document.activeElement === input) focused = card.dataset.id;
    }
    for (const fold of live.querySelectorAll('details.args')) {
      const card = fold.closest('[data-id]');
      if (card) folds.set(card.dataset.id, fold.open);
    }
    return { saved, focused, folds };
  };
  const restore = ({ saved, focused, folds }) => {
    for (const fold of live.querySelectorAll('details.args')) {
      const card = fold.closest('[data-id]');
      if (card && folds.has(card.dataset.id)) fold.open = folds.get(card.dataset.id);
    }
    for (const input of live.querySelectorAll('form input[name="reason"]')) {
      const card = input.closest('[data-id]');
      if (!card || !saved.has(card.dataset.id)) continue;
      input.value = saved.get(card.dataset.id);
      if (focused === card.dataset.id) input.focus();
    }
  };

  let timer = null;
  let inflight = false;
  let again = false;
  const refresh = async () => {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      const res = await fetch(live.dataset.live, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (res.status === 401) {
        window.location.reload(); // the session ended: the page sends us to sign in
        return;
      }
      if (!res.ok) {
        throw new Error(`fragment answered ${res.status}`);
      }
      const html = await res.text();
      const state = keep();
      live.innerHTML = html; // server-rendered by html/template: escaped and masked
      restore(state);
      live.dispatchEvent(new CustomEvent('airlock:updated', { bubbles: true }));
    } catch (err) {
      say('update failed; retrying');
      setTimeout(schedule, 2000);
    } finally {
      inflight = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  };

  const es = new EventSource('/airlock/inbox/events');
  es.addEventListener('open', () => say('live'));
  es.addEventListener('error', () => say('reconnecting…'));
  es.addEventListener('reload', schedule); // first on every connection: catches up on anything missed
  es.addEventListener('change', schedule);
  es.addEventListener('end', (e) => {
    es.close();
    let reason = 'stream ended';
    try {
      reason = JSON.parse(e.data).reason;
    } catch (_) { /* keep the default */ }
    say(reason);
  });
})();

// The hold's countdown: the agent's call waits only grants.hold_window,
// far less than the request's expiry, so the time left is kept current
// between live updates (without this script it is as of the page load).
(function () {
  const tick = () => {
    for (const el of document.querySelectorAll('.hold-left[data-ends]')) {
      const left = Math.round((Date.parse(el.dataset.ends) - Date.now()) / 1000);
      if (Number.isNaN(left)) continue;
      if (left <= 0) {
        el.textContent = 'hold over: an approval applies when the agent calls again';
        continue;
      }
      const m = Math.floor(left / 60);
      el.textContent = (m > 0 ? `${m}m${left % 60}s` : `${left}s`) + ' left';
    }
  };
  tick();
  setInterval(tick, 1000);
})();
