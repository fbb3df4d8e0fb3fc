// OAuth 2.0 Form Post Response Mode: send the authorization response to the application.
// Without JavaScript the page shows a button that does the same.
(function () {
  var form = document.getElementById("response");
  if (form) {
    form.submit();
  }
})();
