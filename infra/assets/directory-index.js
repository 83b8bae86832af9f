// CloudFront Function (viewer request, cloudfront-js-2.0) for the static site behavior: a Next.js
// static export behind an S3 REST origin has /docs/index.html, not /docs/ (DESIGN.md trap 5).
// "/docs/" -> "/docs/index.html", "/docs" -> "/docs/index.html"; paths with an extension in the
// last segment ("/_next/static/app.3f2a.js") pass unchanged. The twin's edge applies the same rule.
// The site deploy's own records under /.zops/ (config.SitePrivateDir: the manifest lists every
// file with its hash) are answered 404 here, however the path is percent-encoded (S3 decodes it).
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var decoded = uri;
  try {
    decoded = decodeURIComponent(uri);
  } catch (e) {
    return { statusCode: 400, statusDescription: 'Bad Request' };
  }
  if (decoded === '/.zops' || decoded.indexOf('/.zops/') === 0) {
    return { statusCode: 404, statusDescription: 'Not Found' };
  }
  if (uri.endsWith('/')) {
    request.uri = uri + 'index.html';
  } else if (uri.substring(uri.lastIndexOf('/') + 1).indexOf('.') === -1) {
    request.uri = uri + '/index.html';
  }
  return request;
}
