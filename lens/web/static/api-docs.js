// Starts Swagger UI on /api/docs (lens/web/api_docs.py) with Lens's OpenAPI description.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // no badge from validator.swagger.io: nothing leaves the site
  });
});
