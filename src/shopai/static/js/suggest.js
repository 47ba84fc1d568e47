// Search suggestions (issue 8): every <input data-suggest> inside a role="search" form
// becomes an ARIA 1.2 combobox whose listbox popup offers query suggestions, matching
// products and categories from GET /api/suggest. Without this script the form is the
// same plain GET search.
//
// Everything the server sends is data, never markup: product names come from admins and
// suggestions from a model, so text is written with text nodes and <mark> elements made
// by DOM calls (no innerHTML anywhere).
import { csrfFetch, csrfToken } from "./csrf.js";

const DEBOUNCE_MS = 120; // after a keystroke, before asking
const SETTLE_MS = 700; // after the last keystroke: the shopper paused on this query
const DEFAULT_URL = "/api/suggest";
const DEFAULT_LIMIT = 8;
const MAX_QUERY_CHARS = 100; // the API's limit (code points); longer searches get no suggestions

// The parts of `text` the server matched, as <mark> elements between text nodes.
// Offsets count code points (the server's string indices), not UTF-16 code units,
// so an emoji before a match does not shift the highlight.
function highlighted(text, ranges) {
  const fragment = document.createDocumentFragment();
  const chars = Array.from(String(text ?? ""));
  const spans = (Array.isArray(ranges) ? ranges : [])
    .filter((range) => Array.isArray(range) && Number.isInteger(range[0]) && Number.isInteger(range[1]))
    .map(([start, end]) => [Math.max(0, start), Math.min(chars.length, end)])
    .filter(([start, end]) => start < end)
    .sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [start, end] of spans) {
    const from = Math.max(start, at); // overlapping ranges: mark each character once
    if (from >= end) continue;
    if (from > at) fragment.append(chars.slice(at, from).join(""));
    const mark = document.createElement("mark");
    mark.textContent = chars.slice(from, end).join("");
    fragment.append(mark);
    at = end;
  }
  if (at < chars.length) fragment.append(chars.slice(at).join(""));
  return fragment;
}

// "1299.00" -> "$1,299.00", as the templates' money filter writes it. The price stays a
// string: no float ever rounds it.
function money(price) {
  const text = String(price ?? "");
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return text;
  const whole = match[1].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `$${whole}.${(match[2] || "").padEnd(2, "0")}`;
}

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function enhance(input, number) {
  const form = input.form;
  const base = input.id || `suggest-${number}`;
  const endpoint = input.dataset.suggestUrl || DEFAULT_URL;
  const limit = Number.parseInt(input.dataset.suggestLimit, 10) || DEFAULT_LIMIT;

  const listbox = element("div", "suggest-popup");
  listbox.id = `${base}-listbox`;
  listbox.setAttribute("role", "listbox");
  listbox.setAttribute("aria-label", "Search suggestions");
  listbox.hidden = true;
  // A polite live region without role="status": pages have their own status messages.
  const live = element("div", "visually-hidden");
  live.id = `${base}-live`;
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-atomic", "true");
  form.classList.add("suggest-host");
  form.append(listbox, live);

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listbox.id);
  input.setAttribute("autocomplete", "off"); // the browser's own history list would cover ours

  let debounce = 0;
  let settle = 0;
  let controller = null;
  let sent = 0; // number of the newest request; older answers are ignored
  let pendingQuery = null; // query of the request in flight
  let settledQuery = null; // last query sent with settled=1
  let shownQuery = null; // query the rendered options answer
  let items = [];
  let active = -1;
  let dismissed = false; // Escape, Tab or a choice closed it: late answers stay closed

  function stopTimers() {
    clearTimeout(debounce);
    clearTimeout(settle);
  }

  function cancel() {
    stopTimers();
    if (controller) controller.abort();
    controller = null;
    pendingQuery = null;
    sent += 1;
  }

  function setActive(index) {
    if (active >= 0 && items[active]) items[active].option.removeAttribute("aria-selected");
    active = index;
    if (index < 0) {
      input.removeAttribute("aria-activedescendant");
      return;
    }
    const { option } = items[index];
    option.setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function open() {
    listbox.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function close() {
    setActive(-1);
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
  }

  function forget() {
    cancel();
    close();
    items = [];
    shownQuery = null;
    listbox.replaceChildren();
    live.textContent = "";
  }

  function group(key, label, entries, fill) {
    if (!entries.length) return;
    const options = element("ul", "suggest-group");
    options.setAttribute("role", "group");
    const heading = element("li", "suggest-heading", label);
    heading.id = `${base}-${key}`;
    heading.setAttribute("role", "presentation");
    options.setAttribute("aria-labelledby", heading.id);
    options.append(heading);
    for (const entry of entries) {
      const option = element("li", `suggest-option suggest-${key}`);
      option.id = `${base}-option-${items.length}`;
      option.setAttribute("role", "option");
      const item = fill(option, entry);
      items.push({ ...item, option });
      options.append(option);
    }
    listbox.append(options);
  }

  function show(query, body) {
    // The shopper is already choosing among these (a settled=1 answer for the same
    // text came in): keep the options still under the keyboard.
    if (query === shownQuery && active >= 0 && !listbox.hidden) return;
    close();
    items = [];
    shownQuery = query;
    listbox.replaceChildren();
    const suggestions = list(body.suggestions).filter((s) => s && typeof s.text === "string");
    const products = list(body.products).filter((p) => p && typeof p.name === "string");
    const categories = list(body.categories).filter((c) => c && typeof c.name === "string");

    group("suggestions", "Suggestions", suggestions, (option, suggestion) => {
      option.dataset.source = String(suggestion.source ?? "");
      const text = element("span", "suggest-name");
      text.append(highlighted(suggestion.text, suggestion.highlight));
      option.append(text);
      return { kind: "suggestion", text: suggestion.text, source: suggestion.source };
    });
    group("products", "Products", products, (option, product) => {
      let thumb;
      if (product.thumbnail_url) {
        thumb = element("img", "suggest-thumb");
        thumb.alt = ""; // the option's text names the product
        thumb.width = 48;
        thumb.height = 36;
        thumb.src = product.thumbnail_url;
      } else {
        thumb = element("span", "suggest-thumb");
      }
      const name = element("span", "suggest-name");
      name.append(highlighted(product.name, product.highlight));
      option.append(thumb, name, element("span", "suggest-price", money(product.price)));
      return { kind: "link", url: product.url };
    });
    group("categories", "Categories", categories, (option, category) => {
      const name = element("span", "suggest-name");
      name.append(highlighted(category.name, category.highlight));
      option.append(name);
      return { kind: "link", url: category.url };
    });

    const counts = [];
    if (suggestions.length) counts.push(plural(suggestions.length, "suggestion"));
    if (products.length) counts.push(plural(products.length, "product"));
    if (categories.length) counts.push(plural(categories.length, "category", "categories"));
    // A box the shopper closed or left stays closed and quiet; its options are ready
    // for the arrow keys.
    if (dismissed || document.activeElement !== input) return;
    live.textContent = counts.length ? `${counts.join(", ")}. Use the arrow keys to choose.` : "No suggestions.";
    if (!items.length) return;
    open();
    if (suggestions.length) csrfToken(); // ready before a click is recorded (anonymous pages)
  }

  async function request(query, settled) {
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    const mine = ++sent;
    pendingQuery = query;
    const params = new URLSearchParams({ q: query, limit: String(limit) });
    if (settled) params.set("settled", "1");
    try {
      const response = await fetch(`${endpoint}?${params}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-Requested-With": "fetch" },
        signal,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      if (mine !== sent) return; // a newer request went out meanwhile
      pendingQuery = null;
      show(query, body && typeof body === "object" ? body : {});
    } catch {
      if (mine !== sent) return; // aborted for a newer one
      pendingQuery = null;
      close(); // suggestions are a convenience: a failure leaves the plain search box
    }
  }

  function schedule() {
    stopTimers();
    const query = input.value.trim();
    if (!query || Array.from(query).length > MAX_QUERY_CHARS) {
      forget();
      return;
    }
    debounce = setTimeout(() => request(query, false), DEBOUNCE_MS);
    settle = setTimeout(() => {
      if (query === settledQuery) return;
      settledQuery = query;
      request(query, true);
    }, SETTLE_MS);
  }

  // Arrow keys on a closed box: show what is there for this text, or ask for it now.
  function reopen() {
    const query = input.value.trim();
    dismissed = false;
    if (query && query === shownQuery && items.length) {
      open();
      return true;
    }
    if (query && query !== pendingQuery && Array.from(query).length <= MAX_QUERY_CHARS) {
      clearTimeout(debounce);
      request(query, false);
    }
    return false;
  }

  function go(url) {
    const target = new URL(String(url ?? ""), window.location.href);
    if (target.origin === window.location.origin) window.location.assign(target.href);
  }

  function choose(item) {
    const query = shownQuery;
    dismissed = true;
    cancel();
    close();
    if (item.kind !== "suggestion") {
      go(item.url);
      return;
    }
    // Fire and forget; keepalive lets it finish while the next page loads.
    csrfFetch(`${endpoint}/clicks`, {
      method: "POST",
      keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query, text: item.text, source: item.source }),
    }).catch(() => {});
    input.value = item.text;
    if (form.method === "get") {
      form.requestSubmit(); // the form's own search, with its other fields
    } else {
      go(`/search?${new URLSearchParams({ q: item.text })}`);
    }
  }

  input.addEventListener("input", (event) => {
    if (event.isComposing) return; // an IME is still composing; compositionend follows
    dismissed = false;
    setActive(-1);
    schedule();
  });
  input.addEventListener("compositionend", () => {
    dismissed = false;
    schedule();
  });

  input.addEventListener("keydown", (event) => {
    if (event.isComposing || event.keyCode === 229) return; // keys meant for the IME
    const expanded = !listbox.hidden;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp": {
        const down = event.key === "ArrowDown";
        if (event.altKey && !down) {
          if (expanded) {
            event.preventDefault();
            close();
          }
          return;
        }
        event.preventDefault();
        if (!expanded && (!reopen() || event.altKey)) return;
        const count = items.length;
        if (active < 0) setActive(down ? 0 : count - 1);
        else setActive((active + (down ? 1 : count - 1)) % count);
        return;
      }
      case "Enter":
        if (expanded && active >= 0) {
          event.preventDefault();
          choose(items[active]);
        }
        return; // with nothing chosen the form submits as usual
      case "Escape":
        if (expanded) {
          event.preventDefault(); // a search input would clear itself too
          dismissed = true;
          close();
        } else if (input.value) {
          event.preventDefault();
          input.value = "";
          forget();
        }
        return;
      case "Tab":
        dismissed = true;
        close();
        return;
      default:
    }
  });

  input.addEventListener("blur", () => close());
  // Keep the focus (and the caret) in the box while an option is clicked.
  listbox.addEventListener("mousedown", (event) => event.preventDefault());
  listbox.addEventListener("click", (event) => {
    const option = event.target instanceof Element ? event.target.closest('[role="option"]') : null;
    const item = items.find((candidate) => candidate.option === option);
    if (item) choose(item);
  });

  form.addEventListener("submit", () => {
    dismissed = true;
    cancel();
    close();
  });
  // Back from the next page (bfcache): the box comes back closed.
  window.addEventListener("pagehide", () => {
    cancel();
    close();
  });
}

let count = 0;
for (const input of document.querySelectorAll('form[role="search"] input[data-suggest]')) {
  if (input.dataset.suggestReady) continue;
  input.dataset.suggestReady = "true";
  enhance(input, ++count);
}
