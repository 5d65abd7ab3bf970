// Lindungi console: the little script the pages need. No library, nothing from another site.
(function () {
  "use strict";

  // 1. The reader's time zone, so the server shows dates in it (with the offset).
  var TZ_COOKIE = "lindungi_tz";
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && cookie(TZ_COOKIE) !== zone) {
      document.cookie = TZ_COOKIE + "=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
      if (document.querySelector("time")) { location.reload(); return; }
    }
  } catch (e) { /* an old browser: the server's default zone, still with its offset */ }

  // 2. Live regions: fetch the page again every second and swap each [data-live] region that
  //    changed, unless the reader is inside it (typing or on a button). A page that names its
  //    version (data-page-tag, its ETag) is asked for with If-None-Match: unchanged, it is a 304.
  var live = document.querySelectorAll("[data-live][id]");
  if (live.length) {
    var every = parseInt(document.body.getAttribute("data-poll-ms") || "1000", 10);
    var tag = document.body.getAttribute("data-page-tag");
    var busy = false;
    var poll = function () {
      if (busy || document.hidden) { return; }
      busy = true;
      var headers = { "X-Requested-With": "live" };
      if (tag) { headers["If-None-Match"] = tag; }
      fetch(location.href, { headers: headers, credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (!r.ok) { return null; }  // 304: nothing changed
          tag = r.headers.get("ETag");
          return r.text();
        })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          live.forEach(function (region) {
            var fresh = doc.getElementById(region.id);
            if (!fresh || fresh.innerHTML === region.innerHTML) { return; }
            if (region.contains(document.activeElement) && document.activeElement !== document.body) { return; }
            region.innerHTML = fresh.innerHTML;
            live = document.querySelectorAll("[data-live][id]");
          });
        })
        .catch(function () { /* the console itself is unreachable: try again next time */ })
        .then(function () { busy = false; });
    };
    setInterval(poll, every);
  }

  // 3. Forms sent once: the button is disabled on the first submit (the idempotency key covers the rest).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.hasAttribute("data-validate") && !validate(form)) { ev.preventDefault(); return; }
    if (form.hasAttribute("data-upload")) { upload(form, ev); return; }
    if (form.hasAttribute("data-once")) {
      if (form.getAttribute("data-sent")) { ev.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    }
  }, true);

  // 4. The report form's checks before sending; the service's own errors come back in the same places.
  function validate(form) {
    var errors = {};
    var msg = function (k) { return form.getAttribute("data-msg-" + k); };
    var val = function (n) { var el = form.elements[n]; return el ? el.value.trim() : ""; };
    ["country", "occurred_at", "category", "severity"].forEach(function (n) {
      if (!val(n)) { errors[n] = msg("required"); }
    });
    if (val("country") && !/^[A-Za-z]{2}$/.test(val("country"))) { errors.country = msg("country"); }
    var now = form.getAttribute("data-now");
    if (val("occurred_at") && now && val("occurred_at") > now) { errors.occurred_at = msg("future"); }
    var people = val("people_affected");
    if (people && !(/^\d+$/.test(people) && parseInt(people, 10) >= 1)) { errors.people_affected = msg("number"); }
    var first = null;
    form.querySelectorAll("[data-error-for]").forEach(function (p) {
      var name = p.getAttribute("data-error-for");
      var input = form.elements[name];
      p.textContent = errors[name] || "";
      if (input && input.setAttribute) {
        if (errors[name]) { input.setAttribute("aria-invalid", "true"); if (!first) { first = input; } }
        else { input.removeAttribute("aria-invalid"); }
      }
    });
    if (first) { first.focus(); return false; }
    return true;
  }

  // 5. Uploads with a progress bar; the answer's result part replaces ours.
  function upload(form, ev) {
    ev.preventDefault();
    if (form.getAttribute("data-sent")) { return; }
    form.setAttribute("data-sent", "1");
    var bar = form.querySelector("progress");
    var target = document.getElementById(form.getAttribute("data-upload"));
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.onprogress = function (e) { if (bar && e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); } };
    xhr.onload = function () {
      if (bar) { bar.value = 100; }
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var fresh = doc.getElementById(target.id);
      if (fresh) { target.innerHTML = fresh.innerHTML; }
      form.removeAttribute("data-sent");
    };
    xhr.onerror = function () { form.removeAttribute("data-sent"); };
    xhr.send(new FormData(form));
  }
})();
