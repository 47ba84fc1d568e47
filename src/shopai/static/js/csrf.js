// fetch() for state-changing AJAX calls: sends a CSRF token as X-CSRFToken.
// Pages that post carry the token in a meta tag; anonymous catalog pages carry none
// (they are the same for every visitor), so the token is fetched once when needed.
let pending = null;

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) return Promise.resolve(meta.content);
  if (!pending) {
    pending = fetch("/csrf-token", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : { csrf_token: "" }))
      .then((body) => body.csrf_token || "")
      .catch(() => {
        pending = null;
        return "";
      });
  }
  return pending;
}

export async function csrfFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("X-CSRFToken", await csrfToken());
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  return fetch(url, { credentials: "same-origin", ...options, headers });
}
