/*!
 * netpay.js — hands a purchase from a vendor page to the customer's NetPay Wallet. No dependencies.
 *
 * Include it on a vendor page:   <script src="/static/netpay.js" defer></script>
 * Optional attribute on that tag: data-wallet-url="http://127.0.0.1:8765" (the wallet's callback; that is the default),
 * or set window.netpayConfig = {walletUrl: "..."} before the script runs (a wallet on another port).
 *
 * API (window.netpay):
 *   netpay.available()                 -> Promise<boolean>   true when a wallet answers GET /v1/hello
 *   netpay.buy({itemId, quoteUrl})     -> Promise<{accessToken, itemUrl, validUntil}>
 *        Takes the quote asked for when the page loaded, or fetches a signed quote from the vendor (POST quoteUrl
 *        {"item_id"}) after a hello, hands it to the wallet (POST /v1/purchase), waits for the customer's answer
 *        (GET /v1/purchase/{id}?token=) and resolves when paid.
 *        Rejects with an Error whose .code is:
 *          no_wallet     no wallet answered (show how to install/start one)
 *          declined      the customer said no
 *          expired       the offer expired before an answer
 *          failed        the payment did not go through (.message says why)
 *          quote_failed  the vendor gave no quote
 *          or the wallet's stable error code (locked, rate_limited, forbidden, quote_paid, ...)
 *        If the browser blocks page-to-wallet requests, buy() navigates to the wallet's fallback page instead
 *        (GET /v1/pay?offer=...&origin=..., with the offer it holds), which redirects back to the item when paid.
 *   On load, a page with Buy buttons asks GET /v1/hello and, when a wallet answers, a quote for each of its first
 *   four buttons, so that a click has nothing to wait for (each used once, while fresh: config.earlyQuoteMs).
 *   netpay.meter({itemId, quoteUrl})   -> Promise<session>   a metered session (seed 000: pay per unit used)
 *        Buys the item's first unit like buy() (the wallet's prompt, or an allowance: the one approval) and resolves
 *        with {sessionId, accessToken, unitsPaid, capUnits, total, ended, unit(n), stop()}:
 *          session.unit(n) -> Promise<{unitNo, unitsPaid, capUnits, total, ended}>  pays unit n in the background,
 *               with no prompt (POST /v1/metered/unit {session_id, unit_no}); asking for a unit already paid pays
 *               nothing; rejects with session_ended (cap reached, ended in the tray, wallet locked) or
 *               unit_out_of_order
 *          session.stop() -> Promise   ends the session (POST /v1/metered/end); also sent as a beacon when the page
 *               is closed. The wallet pays nothing more for an ended session.
 *        The units themselves come from the shop with the session's token in a header, never in a URL:
 *          fetch(unitUrl, {headers: {Authorization: "NetPay " + session.accessToken}})
 *   Metered player: <button class="np-meter" data-netpay-item="ITEM" data-netpay-units-url="/metered/{session}/units/{n}">
 *        with <audio data-netpay-audio> and [data-netpay-meter-status] in the same [data-netpay-meter] element:
 *        plays unit after unit, paying each next unit while the current one plays; a second button
 *        [data-netpay-meter-stop] stops.
 *   netpay.open(result)                -> Promise             opens the paid item: hands the access token to the shop
 *        (POST /v1/access/cookie {token}, same origin; the shop sets the item's HttpOnly cookie), then opens the
 *        item's plain URL. The token never goes into a URL (history, logs, Referer).
 *   netpay.bind(root?)                 binds every .np-buy button (done automatically when the page loads)
 *   netpay.config                      {walletUrl, pollMs, helloTimeoutMs, earlyQuoteMs, waitMs}
 *
 * Buttons:  <button class="np-buy" data-netpay-item="ITEM_ID" data-netpay-quote-url="/v1/quotes">Buy</button>
 * Hint:     <div class="np-hint" data-netpay-hint hidden>How to install and start NetPay Wallet…</div>
 * A bound button gets data-netpay-state = waiting | paid | <error code>, and fires a "netpay:state" event.
 * On success the page opens the item with netpay.open (the token in a cookie, never in the URL).
 *
 * Local Network Access (Chromium 142+): a page that is not itself on this computer (a shop on the web) may only
 * fetch from the wallet on 127.0.0.1 with the user's permission ("loopback-network", asked once per site). Every
 * request to the wallet declares targetAddressSpace: "loopback", so the browser asks at the first Buy instead of
 * failing. The permission outcome decides what Buy does:
 *   granted (or a browser without LNA, or a page on this computer)  the fetch hand-off above
 *   prompt   nothing is fetched from the wallet when the page loads (no permission prompt before a click);
 *            Buy asks, and if the user then refuses, Buy uses the navigation fallback
 *   denied   Buy goes straight to the navigation fallback (a top-level navigation is not gated by LNA); the page
 *            cannot tell "no wallet" from "refused", so it shows no install hint then
 */
(function (window, document) {
  "use strict";

  var script = document.currentScript;
  var preset = window.netpayConfig || {};
  var config = {
    walletUrl: (script && script.getAttribute("data-wallet-url")) || preset.walletUrl || "http://127.0.0.1:8765",
    pollMs: 400,
    helloTimeoutMs: 1500,
    earlyQuoteMs: 2 * 60 * 1000,
    waitMs: 10 * 60 * 1000
  };

  function netpayError(code, message) {
    var err = new Error(message || code);
    err.name = "NetPayError";
    err.code = code;
    return err;
  }

  // Requests to the wallet declare its address space (Local Network Access); browsers without LNA ignore the option.
  function walletFetch(url, options) {
    options.targetAddressSpace = "loopback";
    return window.fetch(url, options);
  }

  function pageIsLocal() {
    var h = window.location.hostname;
    return h === "localhost" || h === "[::1]" || h === "::1" || /^127\./.test(h);
  }

  // The page's Local Network Access permission: "granted", "prompt", "denied", or "granted" where it does not apply.
  function lnaState() {
    if (pageIsLocal() || !navigator.permissions || !navigator.permissions.query) return Promise.resolve("granted");
    function query(name) { return navigator.permissions.query({ name: name }).then(function (s) { return s.state; }); }
    return query("loopback-network").catch(function () { return query("local-network-access"); })
      .catch(function () { return "granted"; });
  }

  function fetchWithTimeout(url, options, ms) {
    if (typeof AbortController === "undefined") return walletFetch(url, options);
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, ms);
    options.signal = ctl.signal;
    return walletFetch(url, options).then(function (resp) {
      clearTimeout(timer);
      return resp;
    }, function (err) {
      clearTimeout(timer);
      throw err;
    });
  }

  function readJson(resp) {
    return resp.json().catch(function () { return {}; });
  }

  function errorFromBody(body, status) {
    var e = body && body.error;
    if (e && typeof e.code === "string") return netpayError(e.code, e.message || e.code);
    return netpayError("failed", "the wallet answered HTTP " + status);
  }

  function available() {
    return fetchWithTimeout(config.walletUrl + "/v1/hello",
      { method: "GET", mode: "cors", cache: "no-store", credentials: "omit" }, config.helloTimeoutMs)
      .then(function (resp) { return resp.ok ? readJson(resp) : null; })
      .then(function (body) { return !!(body && body.protocols && body.protocols.indexOf(1) >= 0); })
      .catch(function () { return false; });
  }

  function getQuote(itemId, quoteUrl) {
    return window.fetch(quoteUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ item_id: itemId })
    }).catch(function () {
      throw netpayError("quote_failed", "the shop could not be reached");
    }).then(function (resp) {
      return readJson(resp).then(function (body) {
        if (!resp.ok || !body.quote || !body.vendor_certificate) {
          var err = errorFromBody(body, resp.status);
          throw netpayError("quote_failed", err.message);
        }
        return { quote: body.quote, vendor_certificate: body.vendor_certificate };
      });
    });
  }

  function paidResult(body) {
    return { accessToken: body.access_token, itemUrl: body.item_url, validUntil: body.valid_until || null,
      sessionId: body.session_id || null };
  }

  function poll(promptId, token) {
    var url = config.walletUrl + "/v1/purchase/" + encodeURIComponent(promptId) + "?token=" + encodeURIComponent(token);
    var deadline = Date.now() + config.waitMs;
    return new Promise(function (resolve, reject) {
      function once() {
        walletFetch(url, { method: "GET", mode: "cors", cache: "no-store", credentials: "omit" })
          .then(function (resp) {
            return readJson(resp).then(function (body) {
              if (!resp.ok) throw errorFromBody(body, resp.status);
              return body;
            });
          })
          .then(function (body) {
            if (body.status === "paid") return resolve(paidResult(body));
            if (body.status === "declined") return reject(netpayError("declined", "the purchase was declined"));
            if (body.status === "expired") return reject(netpayError("expired", "the offer expired"));
            if (body.status === "failed") {
              var msg = (body.error && body.error.message) || "the payment did not go through";
              return reject(netpayError("failed", msg));
            }
            if (Date.now() > deadline) return reject(netpayError("expired", "no answer from the wallet"));
            setTimeout(once, config.pollMs);
          })
          .catch(function (err) {
            reject(err && err.code ? err : netpayError("no_wallet", "the wallet stopped answering"));
          });
      }
      once();
    });
  }

  function absolute(url) {
    var a = document.createElement("a");
    a.href = url;
    return a.href;
  }

  function base64url(text) {
    return window.btoa(unescape(encodeURIComponent(text))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // With the offer the page already holds, the wallet need not ask the vendor for another quote first.
  function fallback(itemId, quoteUrl, offer) {
    var target = offer
      ? config.walletUrl + "/v1/pay?offer=" + base64url(JSON.stringify(offer)) +
        "&origin=" + encodeURIComponent(window.location.origin)
      : config.walletUrl + "/v1/pay?quote_url=" + encodeURIComponent(absolute(quoteUrl)) +
        "&item=" + encodeURIComponent(itemId);
    window.location.assign(target);
    return new Promise(function () {}); // the page is going away
  }

  // Quotes asked for when the page loaded (a wallet answered), for the page's Buy buttons: "itemId quoteUrl" ->
  // {offer: Promise, at: ms}. Each is used once, and only while it has well over a minute left.
  var early = {};

  function prefetch(itemId, quoteUrl) {
    var offer = getQuote(itemId, quoteUrl);
    offer.catch(function () {}); // a failed early quote is simply asked for again on the click
    early[itemId + " " + quoteUrl] = { offer: offer, at: Date.now() };
  }

  function takeEarly(itemId, quoteUrl) {
    var key = itemId + " " + quoteUrl;
    var found = early[key];
    delete early[key];
    if (!found) return null;
    return found.offer.then(function (offer) {
      var body = offer.quote.body || {};
      var lifeMs = ((body.expires_at - body.issued_at) || 0) * 1000;
      if (Date.now() - found.at > Math.min(lifeMs - 60000, config.earlyQuoteMs)) return getQuote(itemId, quoteUrl);
      return offer;
    }, function () {
      return getQuote(itemId, quoteUrl);
    });
  }

  // What a purchase needs before it is handed to the wallet: a wallet that said hello, and the vendor's quote.
  // With a quote from page load (asked for after a hello) nothing is waited for; otherwise hello, then quote.
  function prepare(itemId, quoteUrl) {
    var ready = takeEarly(itemId, quoteUrl);
    if (ready) return ready.then(function (offer) { return { offer: offer, helloAtLoad: true }; });
    return lnaState().then(function (state) {
      // The browser will not let the page reach the wallet: navigate to it with the shop's quote instead.
      if (state === "denied") {
        return getQuote(itemId, quoteUrl).then(function (offer) { return fallback(itemId, quoteUrl, offer); });
      }
      return available().then(function (ok) {
        if (ok) return true;
        // Unanswered: no wallet, or the user just refused the permission prompt (then navigate instead).
        return lnaState().then(function (after) {
          if (after !== "denied") return false;
          return getQuote(itemId, quoteUrl).then(function (offer) { return fallback(itemId, quoteUrl, offer); });
        });
      });
    }).then(function (ok) {
      if (!ok) throw netpayError("no_wallet", "no NetPay Wallet is running on this computer");
      return getQuote(itemId, quoteUrl);
    }).then(function (offer) { return { offer: offer, helloAtLoad: false }; });
  }

  function unreached(itemId, quoteUrl, ready) {
    if (!ready.helloAtLoad) return fallback(itemId, quoteUrl, ready.offer);
    return available().then(function (ok) {
      if (!ok) throw netpayError("no_wallet", "no NetPay Wallet is running on this computer");
      return fallback(itemId, quoteUrl, ready.offer);
    });
  }

  function buy(options) {
    var itemId = options && options.itemId;
    var quoteUrl = (options && options.quoteUrl) || "/v1/quotes";
    if (!itemId) return Promise.reject(netpayError("malformed", "itemId is required"));
    return prepare(itemId, quoteUrl).then(function (ready) {
      var offer = ready.offer;
      // No cache mode: a POST's answer is never cached anyway, and "no-store" would also make Chromium skip its
      // CORS preflight cache, costing every purchase a preflight round trip to the wallet.
      return walletFetch(config.walletUrl + "/v1/purchase", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(offer)
      }).then(function (resp) {
        return readJson(resp).then(function (body) {
          if (!resp.ok) throw errorFromBody(body, resp.status);
          if (body.status === "paid") return paidResult(body);
          if (body.status === "pending") return poll(body.prompt_id, body.poll_token);
          throw netpayError("failed", "unexpected answer from the wallet");
        });
      }, function () {
        return unreached(itemId, quoteUrl, ready);
      });
    });
  }

  // ---- metered sessions ------------------------------------------------------------------------------------
  var openSessions = {};

  function walletPost(path, body) {
    return walletFetch(config.walletUrl + path, {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).catch(function () {
      throw netpayError("no_wallet", "No NetPay Wallet answered.");
    }).then(function (resp) {
      return readJson(resp).then(function (data) {
        if (!resp.ok) throw errorFromBody(data, resp.status);
        return data;
      });
    });
  }

  function meter(opts) {
    return buy(opts).then(function (paid) {
      if (!paid.sessionId) throw netpayError("failed", "this item is not sold by the unit");
      var session = {
        sessionId: paid.sessionId, accessToken: paid.accessToken, unitsPaid: 1, ended: false,
        unit: function (n) {
          return walletPost("/v1/metered/unit", { session_id: session.sessionId, unit_no: n }).then(function (b) {
            session.unitsPaid = Math.max(session.unitsPaid, b.units_paid);
            session.capUnits = b.cap_units;
            session.total = b.total;
            session.ended = !!b.ended;
            if (session.ended) delete openSessions[session.sessionId];
            return { unitNo: b.unit_no, unitsPaid: b.units_paid, capUnits: b.cap_units, total: b.total, ended: b.ended };
          }, function (err) {
            if (err.code === "session_ended") { session.ended = true; delete openSessions[session.sessionId]; }
            throw err;
          });
        },
        stop: function () {
          delete openSessions[session.sessionId];
          if (session.ended) return Promise.resolve(null);
          session.ended = true;
          return walletPost("/v1/metered/end", { session_id: session.sessionId });
        }
      };
      openSessions[session.sessionId] = session;
      return session;
    });
  }

  // The page is going away: end its sessions (a beacon survives the unload; the wallet also ends idle sessions).
  window.addEventListener("pagehide", function () {
    for (var id in openSessions) {
      if (!Object.prototype.hasOwnProperty.call(openSessions, id)) continue;
      try {
        navigator.sendBeacon(config.walletUrl + "/v1/metered/end",
          new Blob([JSON.stringify({ session_id: id })], { type: "text/plain" }));
      } catch (e) { /* nothing more can be done while unloading */ }
    }
  });

  function money(total) {
    if (!total) return "";
    var v = (total.amount / 100).toFixed(2);
    return (total.currency === "EUR" ? "\u20ac" : total.currency + " ") + v;
  }

  function bindMeter(box) {
    var button = box.querySelector(".np-meter[data-netpay-item]");
    var audio = box.querySelector("audio[data-netpay-audio]");
    var status = box.querySelector("[data-netpay-meter-status]");
    var stopButton = box.querySelector("[data-netpay-meter-stop]");
    if (!button || !audio || button.getAttribute("data-netpay-bound")) return;
    button.setAttribute("data-netpay-bound", "1");
    var template = button.getAttribute("data-netpay-units-url");
    var session = null, current = 0, blobs = {};

    function say(state, text) {
      box.setAttribute("data-netpay-state", state);
      if (status) status.textContent = text;
    }
    function shown() {
      var n = session.unitsPaid;
      say(session.ended ? "ended" : "playing", "Unit " + current + " \u00b7 " + n + " unit" + (n === 1 ? "" : "s") +
        " paid" + (session.total ? ", " + money(session.total) : "") + (session.ended ? " \u00b7 session ended" : ""));
    }
    function fetchUnit(n) {
      if (blobs[n]) return blobs[n];
      var url = template.replace("{session}", encodeURIComponent(session.sessionId)).replace("{n}", String(n));
      blobs[n] = window.fetch(url, { headers: { Authorization: "NetPay " + session.accessToken }, cache: "no-store" })
        .then(function (resp) {
          if (!resp.ok) throw netpayError("failed", "the shop did not deliver unit " + n);
          return resp.blob();
        }).then(function (blob) { return URL.createObjectURL(blob); });
      return blobs[n];
    }
    function ahead(n) {  // pay and fetch the unit after n while n plays
      if (session.ended || n + 1 > (session.capUnits || Infinity)) return null;
      return session.unit(n + 1).then(function () { return fetchUnit(n + 1); });
    }
    function play(n) {
      current = n;
      return fetchUnit(n).then(function (src) {
        audio.src = src;
        shown();
        var next = ahead(n);
        if (next) next.then(shown, function (err) { if (err.code !== "session_ended") say(err.code, err.message); else shown(); });
        return audio.play();
      });
    }
    audio.addEventListener("ended", function () {
      if (!session) return;
      if (session.unitsPaid > current) play(current + 1).catch(function (err) { say("failed", err.message); });
      else { shown(); say("ended", status ? status.textContent : ""); }
    });
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (session) return;
      button.disabled = true;
      say("waiting", "Waiting for your wallet\u2026");
      meter({ itemId: button.getAttribute("data-netpay-item"),
              quoteUrl: button.getAttribute("data-netpay-quote-url") || "/v1/quotes" })
        .then(function (s) {
          session = s;
          audio.hidden = false;
          if (stopButton) stopButton.hidden = false;
          return play(1);
        }).catch(function (err) {
          button.disabled = false;
          var code = (err && err.code) || "failed";
          if (code === "no_wallet" && showHint(true)) return say(code, "");
          say(code, MESSAGES[code] || (err && err.message) || "The purchase did not go through.");
        });
    });
    if (stopButton) stopButton.addEventListener("click", function () {
      if (!session) return;
      audio.pause();
      session.stop().then(shown, shown);
    });
  }

  function openItem(result) {
    return window.fetch("/v1/access/cookie", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: result.accessToken })
    }).then(function (resp) {
      if (!resp.ok) throw netpayError("failed", "the shop did not take the access token");
      window.location.assign(result.itemUrl);
    });
  }

  function showHint(show) {
    var hints = document.querySelectorAll("[data-netpay-hint]");
    for (var i = 0; i < hints.length; i++) hints[i].hidden = !show;
    return hints.length > 0;
  }

  var MESSAGES = {
    declined: "You declined this purchase.",
    expired: "The offer expired. Please try again.",
    locked: "Unlock your NetPay Wallet, then try again.",
    rate_limited: "Your wallet is busy with another purchase from this shop.",
    insufficient_coins: "Not enough coins in your wallet.",
    no_wallet: "No NetPay Wallet answered."
  };

  function setState(button, state, message) {
    button.setAttribute("data-netpay-state", state);
    var status = button.nextElementSibling;
    if (!status || !status.classList || !status.classList.contains("np-status")) {
      status = document.createElement("span");
      status.className = "np-status";
      status.setAttribute("role", "status");
      button.parentNode.insertBefore(status, button.nextSibling);
    }
    status.textContent = message || "";
    try {
      button.dispatchEvent(new CustomEvent("netpay:state", { bubbles: true, detail: { state: state } }));
    } catch (e) { /* very old browsers */ }
  }

  function onClick(event) {
    var button = event.currentTarget;
    event.preventDefault();
    if (button.getAttribute("data-netpay-state") === "waiting") return;
    button.disabled = true;
    setState(button, "waiting", "Waiting for your wallet…");
    buy({
      itemId: button.getAttribute("data-netpay-item"),
      quoteUrl: button.getAttribute("data-netpay-quote-url") || "/v1/quotes"
    }).then(function (result) {
      showHint(false);
      setState(button, "paid", "Paid. Opening…");
      return openItem(result);
    }).then(null, function (err) {
      button.disabled = false;
      var code = (err && err.code) || "failed";
      // With an install hint on the page, the hint says it; the status line does not repeat it.
      if (code === "no_wallet" && showHint(true)) return setState(button, code, "");
      // The wallet's own words first for missing coins: they say which coins to buy (and name no balance).
      var own = code === "insufficient_coins" && err && err.message !== code ? err.message : null;
      setState(button, code, own || MESSAGES[code] || (err && err.message) || "The purchase did not go through.");
    });
  }

  function bind(root) {
    var buttons = (root || document).querySelectorAll(".np-buy[data-netpay-item]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("data-netpay-bound")) continue;
      buttons[i].setAttribute("data-netpay-bound", "1");
      buttons[i].addEventListener("click", onClick);
    }
  }

  // After the load event, when the browser has nothing else to do (or within a second).
  function whenIdle(fn) {
    function idle() {
      if (window.requestIdleCallback) window.requestIdleCallback(fn, { timeout: 1000 });
      else setTimeout(fn, 50);
    }
    if (document.readyState === "complete") idle();
    else window.addEventListener("load", idle);
  }

  function start() {
    bind(document);
    var meters = document.querySelectorAll("[data-netpay-meter]");
    for (var m = 0; m < meters.length; m++) bindMeter(meters[m]);
    var buttons = document.querySelectorAll(".np-buy[data-netpay-item]");
    if (buttons.length) {
      // Probe only where it cannot raise a permission prompt before the customer pressed Buy.
      lnaState().then(function (state) {
        if (state !== "granted") return;
        available().then(function (ok) {
          if (!ok) return showHint(true);
          // A wallet is there: ask for the quotes once the page is shown, so a click hands one over at once (a few
          // buttons at most). Not before: the page's own first paint comes first.
          whenIdle(function () {
            for (var i = 0; i < buttons.length && i < 4; i++) {
              prefetch(buttons[i].getAttribute("data-netpay-item"),
                buttons[i].getAttribute("data-netpay-quote-url") || "/v1/quotes");
            }
          });
        });
      });
    }
  }

  window.netpay = { available: available, buy: buy, meter: meter, bind: bind, open: openItem, config: config };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);
