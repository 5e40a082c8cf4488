/* Keyboard shortcuts for the retention panel, and keeping the address on the advice being shown. */
(function () {
  "use strict";

  var TYPING_TARGETS = "input, select, textarea, [contenteditable]";

  function shortcutButton(key) {
    return document.querySelector('button[data-shortcut="' + CSS.escape(key) + '"]:not([disabled])');
  }

  // A key acts only when pressed on its own, a moment after any other: letters typed as a word (a name meant for the
  // CRM beside the panel) would otherwise each log an action on the call. The action waits that moment too, so the
  // word's first letter is caught by its second.
  var ALONE_MS = 400;
  var lastKeyAt = -Infinity;
  var waiting = null;

  document.addEventListener("keydown", function (event) {
    if (document.body.getAttribute("data-shortcuts") === "off") {
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) {
      return;
    }
    if (event.target instanceof Element && event.target.closest(TYPING_TARGETS)) {
      return;
    }
    var key = event.key.toLowerCase();
    if (key.length !== 1) {
      return;  // Tab, Shift, arrows: moving about, not typing
    }
    var inBurst = event.timeStamp - lastKeyAt < ALONE_MS;
    lastKeyAt = event.timeStamp;
    if (waiting !== null || inBurst) {
      clearTimeout(waiting);
      waiting = null;
      return;
    }
    if (shortcutButton(key)) {
      event.preventDefault();
    }
    waiting = setTimeout(function () {
      waiting = null;
      actOn(key);
    }, ALONE_MS);
  });

  function actOn(key) {
    var button = shortcutButton(key);
    var hint = document.getElementById("shortcut-hint");
    if (!button) {
      if (hint && hint.getAttribute("data-keys").indexOf(key) !== -1) {
        hint.textContent = hint.getAttribute("data-text").replace("{key}", key);
        hint.hidden = false;
      }
      return;
    }
    if (hint) {
      hint.hidden = true;
      hint.textContent = "";
    }
    button.focus();
    // A click runs the form's own validation, so a missing override reason is asked for first.
    button.click();
  }

  // A decision by someone else waits while the agent is choosing in the offers (an override reason, say, and the
  // button they moved on to with Tab to send it): the next look brings it once they have left the offers, so the
  // choice is not wiped from under them, nor their place moved.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var active = document.activeElement;
    if (source && source.hasAttribute("data-refresh") && active && source.contains(active) &&
        active.matches("select, input, textarea, button")) {
      event.detail.shouldSwap = false;
    }
  });

  // A list asked for again on a timer (the escalations a lead waits on) is left as it is when nothing in it changed,
  // and when something did, focus goes back to the same link or button in the new list: a keyboard user reading it
  // must not be sent to the top of the page every 20 seconds.
  var refocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var target = event.detail.target;
    if (!source || !target || !(source.getAttribute("hx-trigger") || "").match(/^every /)) {
      return;
    }
    var fresh = new DOMParser().parseFromString(event.detail.serverResponse, "text/html").getElementById(target.id);
    if (fresh && fresh.innerHTML === target.innerHTML) {
      event.detail.shouldSwap = false;
      return;
    }
    var active = document.activeElement;
    refocus = active && active !== document.body && target.contains(active)
      ? {id: active.id, href: active.getAttribute("href"), text: active.textContent}
      : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) {
      return;
    }
    var wanted = refocus;
    refocus = null;
    var candidates = wanted.id ? [document.getElementById(wanted.id)] : document.querySelectorAll("a[href], button");
    for (var i = 0; i < candidates.length; i++) {
      var element = candidates[i];
      if (element && (wanted.id || (element.getAttribute("href") === wanted.href && element.textContent === wanted.text))) {
        element.focus({preventScroll: true});
        return;
      }
    }
  });

  // After a logged action the buttons are replaced; put focus on the feedback so keyboard users keep their place.
  // Focus stays where the agent put it outside the replaced part (typing a search while a team lead's answer comes in).
  document.addEventListener("htmx:afterSettle", function () {
    // What a shortcut could not do before the advice changed says nothing about it now.
    var hint = document.getElementById("shortcut-hint");
    if (hint) {
      hint.hidden = true;
      hint.textContent = "";
    }
    var feedback = document.getElementById("action-feedback");
    var active = document.activeElement;
    var focusWasReplaced = !active || active === document.body || (feedback && feedback.closest("section").contains(active));
    if (feedback && focusWasReplaced) {
      feedback.focus();
    } else if (feedback) {
      // Focus stays put, so a screen reader hears the news from the page's one lasting announcer instead.
      var announcer = document.getElementById("announcer");
      if (announcer) {
        announcer.textContent = feedback.textContent;
      }
    }
  });

  // While an action is being logged the advice it changes is busy: screen readers hold back reading the old one, and
  // the pointer shows the wait (the button itself is disabled by hx-disabled-elt).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target && target.id === "decision") {
      target.setAttribute("aria-busy", "true");
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var target = event.detail.target;
    if (target && target.removeAttribute) {
      target.removeAttribute("aria-busy");
    }
  });

  // A click that got no answer (the network, or an error on the server) must not look as if it was saved.
  function sayNotSaved(event) {
    var source = event.detail && event.detail.elt;
    // A failed look for an escalation's answer saved nothing and loses nothing: the next look tries again.
    if (source && source.hasAttribute("data-refresh")) {
      return;
    }
    var section = (source && source.closest("section")) || document.getElementById("main");
    if (!section) {
      return;
    }
    var message = section.querySelector(".request-failed");
    if (!message) {
      message = document.createElement("p");
      message.className = "message message-error request-failed";
      message.setAttribute("role", "alert");
      message.tabIndex = -1;
      section.insertBefore(message, section.firstElementChild ? section.firstElementChild.nextSibling : null);
    }
    // A refusal (4xx) saved nothing. With no answer, or a server error, the click may have been saved before the
    // failure: saying "not saved" then would have an agent whose call has ended leave a logged action believed lost.
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    var unknown = event.type === "htmx:sendError" || status === 0 || status >= 500;
    message.textContent = document.body.getAttribute(unknown ? "data-request-unknown" : "data-request-failed");
    message.focus();
  }
  document.addEventListener("htmx:responseError", sayNotSaved);
  document.addEventListener("htmx:sendError", sayNotSaved);

  // A review page's filters update it in place, and its address with them: switching language comes back to the
  // page as it is now, filters included, not as it was first loaded. The panel keeps the address of the advice
  // shown, which its form already carries.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var next = form.querySelector && form.querySelector("input[name=next]");
    var main = document.getElementById("main");
    if (next && form.classList.contains("language-switch") && main && !main.hasAttribute("data-decision-url")) {
      next.value = window.location.pathname + window.location.search;
    }
  });

  // Reloading the page should show the same advice, not ask for a new one.
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    var url = main && main.getAttribute("data-decision-url");
    if (url && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", url);
    }
  });
})();
