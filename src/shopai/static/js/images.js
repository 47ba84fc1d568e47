// Images drawn by the model in background jobs, shown as they arrive without a reload.
//
// Pages mark what to keep current; each names its product's API URL (GET
// /api/products/<id>, whose `image_status` is none, queued, running, succeeded or
// failed):
//   [data-image-watch]   the product's image with its notes and a live status line
//                        (product page, edit page, generated images page);
//   [data-image-status]  a status badge (the admin product list).
// One request per product is made at load when it is worth it (the page shows the
// placeholder, or it was rendered for an admin, or a badge says the job is under way),
// then one every POLL_MS while the job is queued or running. Polling stops when the
// job ends, pauses while the tab is hidden and gives up after MAX_POLL_MS. Text is set
// with textContent only: names and prompts are data, never markup.

const POLL_MS = 2000;
const MAX_POLL_MS = 15 * 60 * 1000;
const MAX_FAILURES = 10;
const ACTIVE = new Set(["queued", "running"]);

// Same words and colours as templates/admin/products.html.
const SHORT = {
  none: "Not requested",
  queued: "Queued",
  running: "Drawing",
  succeeded: "Ready",
  failed: "Failed",
};
const BADGES = {
  queued: "text-bg-secondary",
  running: "text-bg-primary",
  succeeded: "text-bg-success",
  failed: "text-bg-danger",
};
const WORKING = {
  queued: "The image is waiting to be drawn…",
  running: "The image is being drawn…",
};

// The path of an image URL from the API. The API builds external URLs, which a proxy
// in front of the shop may give the wrong scheme or host; the shop serves its images
// itself, so the path is what the page needs (and all the CSP allows).
function localPath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

function setText(element, text) {
  if (element && element.textContent !== text) element.textContent = text;
}

// The image, notes and status line of one product in a [data-image-watch] block.
function imageView(block) {
  const admin = block.dataset.admin === "true";
  const img = block.querySelector("img[data-image-img]");
  const thumbnail = img?.dataset.imageImg === "thumbnail";
  const live = block.querySelector("[data-image-live]");
  const aiNote = block.querySelector('[data-image-note="ai"]');
  const rendererNote = block.querySelector('[data-image-note="renderer"]');
  const model = block.querySelector("[data-image-model]");
  const reload = block.querySelector("[data-image-reload]");

  // Puts the product's current image in; true if it was not the one shown.
  function swap(product) {
    const url = thumbnail ? product.thumbnail_url : product.image_url;
    const path = url ? localPath(url) : null;
    if (!img || !path || img.getAttribute("src") === path) return false;
    img.src = path;
    img.alt = product.name;
    if (!thumbnail && product.image) {
      img.width = product.image.width;
      img.height = product.image.height;
    }
    const source = product.image ? product.image.source : null;
    if (aiNote) aiNote.hidden = !product.image_ai_generated;
    if (model) setText(model, ""); // the API does not name the model; the admin page does
    if (rendererNote) rendererNote.hidden = product.image_ai_generated || !source || source === "upload";
    return true;
  }

  return {
    wanted: admin || block.dataset.hasImage !== "true",
    update(product, { ended }) {
      const status = product.image_status;
      if (ACTIVE.has(status)) {
        setText(live, WORKING[status]);
        return;
      }
      const swapped = status === "succeeded" && swap(product);
      if (status === "succeeded" && ended) {
        setText(live, swapped ? "The image is ready." : admin ? "New images are ready to choose from." : "");
        if (reload) reload.hidden = false;
      } else if (status === "failed" && admin) {
        setText(live, "The image could not be drawn.");
      } else {
        setText(live, swapped ? "The image is ready." : ""); // shoppers keep the placeholder
      }
    },
    stopped(message) {
      if (admin) setText(live, message);
    },
  };
}

function badgeView(badge) {
  function show(status) {
    setText(badge, SHORT[status] || status);
    badge.className = `badge ${BADGES[status] || "text-bg-light"}`;
  }
  return {
    wanted: !badge.dataset.imageStatus || ACTIVE.has(badge.dataset.imageStatus),
    update(product) {
      badge.dataset.imageStatus = product.image_status;
      show(product.image_status);
    },
    stopped() {},
  };
}

// One poller per product, shared by every view of it on the page.
class Watch {
  constructor(url) {
    this.url = url;
    this.views = [];
    this.timer = null;
    this.inFlight = false;
    this.done = false;
    this.sawActive = false;
    this.failures = 0;
    this.started = Date.now();
  }

  async poll() {
    this.timer = null;
    if (this.done || this.inFlight) return;
    this.inFlight = true;
    let product = null;
    try {
      const response = await fetch(this.url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status === 404) {
        this.stop("This product no longer exists.");
      } else if (response.ok) {
        product = await response.json();
      }
    } catch {
      // no connection: tried again below
    } finally {
      this.inFlight = false;
    }
    if (this.done) return;
    if (!product) {
      this.failures += 1;
      if (this.failures >= MAX_FAILURES) this.stop("Live updates stopped: reload the page to see the image.");
      else this.schedule(POLL_MS * Math.min(this.failures + 1, 5));
      return;
    }
    this.failures = 0;
    const active = ACTIVE.has(product.image_status);
    const ended = this.sawActive && !active;
    if (active) this.sawActive = true;
    for (const view of this.views) view.update(product, { ended });
    if (!active) {
      this.done = true;
    } else if (Date.now() - this.started > MAX_POLL_MS) {
      this.stop("Still drawing: reload the page later to see the image.");
    } else {
      this.schedule(POLL_MS);
    }
  }

  schedule(delay) {
    if (this.done || document.hidden) return; // a hidden tab catches up when shown
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), delay);
  }

  stop(message) {
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const view of this.views) view.stopped(message);
  }
}

function start() {
  const watches = new Map();
  function add(element, view) {
    const url = element.dataset.apiUrl;
    if (!url || !view.wanted) return;
    let watch = watches.get(url);
    if (!watch) watches.set(url, (watch = new Watch(url)));
    watch.views.push(view);
  }
  for (const block of document.querySelectorAll("[data-image-watch]")) add(block, imageView(block));
  for (const badge of document.querySelectorAll("[data-image-status]")) add(badge, badgeView(badge));
  if (watches.size === 0) return;

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      for (const watch of watches.values()) {
        if (watch.timer !== null) clearTimeout(watch.timer);
        watch.timer = null;
      }
    } else {
      for (const watch of watches.values()) watch.schedule(0);
    }
  });
  for (const watch of watches.values()) watch.schedule(0);
}

start();
