// Warns a minute before the idle sign-out and offers "Stay signed in".
//
// The server keeps the time: the page asks GET /api/v1/me/session (which does not
// count as activity) how many seconds are left, so activity in another tab, a
// revoked session or a moved server clock are all seen. It asks again at the
// poll interval (data-poll-seconds) or when the warning is due, whichever is
// sooner. "Stay signed in" posts to the keep-alive route. When the session has
// ended, the page goes to sign-in with next= so the user comes back here (not on
// a shared workstation, whose page gives no return address: the next person signs in).
(function () {
  "use strict";
  var box = document.getElementById("idle-warning");
  if (!box || !window.fetch) { return; }
  var pollMs = Math.max(100, parseFloat(box.dataset.pollSeconds || "30") * 1000);
  var statusUrl = box.dataset.statusUrl;
  var keepAliveUrl = box.dataset.keepAliveUrl;
  var signInUrl = box.dataset.signInUrl || "/sign-in";
  var returnTo = box.dataset.returnTo || "";
  var countdown = box.querySelector("[data-countdown]");
  var button = document.getElementById("stay-signed-in");
  var timer = null;
  var leaving = false;
  var atLimit = false;  // "Stay signed in" cannot move the absolute limit (12 hours by default)
  var before = null;  // what had focus when the warning took it, to give it back

  function ended() {
    if (leaving) { return; }
    leaving = true;
    window.location.assign(signInUrl + "?notice=timed_out" + (returnTo ? "&next=" + encodeURIComponent(returnTo) : ""));
  }

  function schedule(ms) {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, Math.max(100, Math.min(pollMs, ms)));
  }

  function show(state) {
    var seconds = state.seconds_left;
    var left = "About " + seconds + " second" + (seconds === 1 ? "" : "s") + " left.";
    if (countdown) {
      countdown.textContent = atLimit
        ? "This session has reached its time limit. " + left + " Save your work: you will need to sign in again."
        : left;
    }
    if (box.hidden) {
      box.hidden = false;
      before = document.activeElement;
      button.focus();
    }
  }

  function apply(state) {
    if (state.seconds_left <= 0) { ended(); return; }
    var warnAt = state.warn_before_seconds;
    if (state.seconds_left <= warnAt) {
      show(state);
      schedule(Math.min(5000, state.seconds_left * 1000));
    } else {
      var shown = !box.hidden;
      var focused = document.activeElement;
      // The button is disabled while it asks the server, which drops its focus to the body.
      var hadFocus = shown && (!focused || focused === document.body || box.contains(focused));
      box.hidden = true;
      if (hadFocus) {  // never leave focus on a hidden button: back where the person was, or the page
        (before && before !== document.body && document.contains(before) ? before : document.getElementById("main")).focus();
      }
      before = null;
      schedule((state.seconds_left - warnAt) * 1000);
    }
  }

  function request(url, method) {
    return window.fetch(url, {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) { ended(); return null; }
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.json();
    });
  }

  function check() {
    request(statusUrl, "GET").then(function (state) {
      if (state) { apply(state); }
    }).catch(function () { schedule(pollMs); });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    request(keepAliveUrl, "POST").then(function (state) {
      button.disabled = false;
      if (!state) { return; }
      if (state.seconds_left <= state.warn_before_seconds) {
        atLimit = true;
        button.hidden = true;
      }
      apply(state);
    }).catch(function () {
      button.disabled = false;
      schedule(pollMs);
    });
  });

  check();
}());
