// fetch() for state-changing AJAX calls: sends the page's CSRF token as X-CSRFToken.
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function csrfFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("X-CSRFToken", csrfToken());
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  return fetch(url, { credentials: "same-origin", ...options, headers });
}
