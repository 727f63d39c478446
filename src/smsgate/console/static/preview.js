// Live template preview: asks the console's JSON endpoint how the content renders and bills.
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  if (!form) { return; }
  var field = function (name) { return form.querySelector("[name='" + name + "']"); };
  var samples = document.getElementById("sample-params");
  var out = document.getElementById("preview-content");
  var meta = document.getElementById("preview-meta");
  var timer = null;

  function refresh() {
    var query = new URLSearchParams({
      content: (field("template_content") || {}).value || "",
      sign_name: (field("sign_name") || {}).value || "",
      provider_no: (field("provider_no") || {}).value || "",
      params: samples.value || ""
    });
    fetch("/admin/templates/preview?" + query.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.ok) {
          out.textContent = "";
          meta.textContent = data.error;
          return;
        }
        out.textContent = data.content;
        meta.textContent = data.characters + " characters · " + data.segments +
          " segment(s) · fee " + data.fee + " per phone (" + data.scheme + " counting)" +
          (data.placeholders.length ? " · params: " + data.placeholders.join(", ") : "");
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  samples.addEventListener("input", later);
  refresh();
})();
