// Starts Swagger UI on /docs with facade's OpenAPI document; a file, not an inline script,
// so the page's Content-Security-Policy allows scripts from facade itself only.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.dataset.openapiUrl, document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Never send the document to swagger.io's online validator.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
