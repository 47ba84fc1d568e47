// The shop assistant (issue 9): a chat grounded in the catalog, streamed as it is written.
//
// Every [data-assistant] component on the page becomes a chat: on /assistant it is inline
// and loads the conversation at once; elsewhere it sits in an offcanvas panel opened by
// the floating [data-assistant-toggle] button and loads the conversation when first
// opened (the panel's markup is the same for every visitor: anonymous pages are cached).
//
// API (JSON, CSRF-protected writes):
//   GET  /api/chat                          this session's conversation
//   POST /api/chat                          ask; answers with a server-sent event stream
//   POST /api/chat/new                      start over
//   POST /api/chat/messages/<id>/rating     thumbs up/down
// Stopping aborts the stream's fetch: closing the connection is what stops the model.
//
// Text from the shopper and from the model is only ever written with text nodes. The one
// exception is an answer's `html`, which the server rendered from markdown and sanitized:
// it is the only thing assigned to innerHTML.
import { csrfFetch, csrfToken } from "./csrf.js";

const API = "/api/chat";
const OFFLINE = "Could not reach the shop. Check your connection and try again.";
const CUT_OFF = "The answer was cut off.";
const NOTES = {
  stopped: "Stopped",
  failed: CUT_OFF,
  limited: "A search-only answer: the assistant is limited right now.",
  streaming: "Still being written…",
};
const RATINGS = [
  [1, "Helpful"],
  [-1, "Not helpful"],
];

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

// Links and images only to http(s); same-origin ones stay relative.
function safeUrl(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    const url = new URL(value, window.location.href);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : url.href;
  } catch {
    return null;
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return String(body.error.message);
  } catch {
    // not JSON: fall through
  }
  if (response.status === 429) return "Too many questions at once. Please wait a moment and try again.";
  return `Something went wrong (${response.status}). Please try again.`;
}

// One server-sent event from a block of lines (the blank line already removed).
function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comments and heartbeats
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  try {
    return { name, data: JSON.parse(data.join("\n")) };
  } catch {
    return null;
  }
}

// The events of a text/event-stream response body, as they arrive.
async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let carry = ""; // a "\r" that may be the first half of a "\r\n" split across chunks
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return; // an unterminated last event is dropped, as EventSource does
      let text = carry + decoder.decode(value, { stream: true });
      carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
  } finally {
    try {
      reader.releaseLock();
    } catch {
      // already released
    }
  }
}

class Chat {
  constructor(root) {
    this.root = root;
    this.messages = root.querySelector("[data-assistant-messages]");
    this.empty = root.querySelector("[data-assistant-empty]");
    this.status = root.querySelector("[data-assistant-status]");
    this.form = root.querySelector("[data-assistant-form]");
    this.input = root.querySelector("[data-assistant-input]");
    this.sendButton = root.querySelector("[data-assistant-send]");
    this.stopButton = root.querySelector("[data-assistant-stop]");
    this.newButton = root.querySelector("[data-assistant-new]");
    this.conversationId = null;
    this.state = "idle"; // idle | pending (waiting for the answer to start) | streaming
    this.controller = null;
    this.loading = null;
    this.epoch = 0; // bumped by "New conversation": a history still on its way is stale

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.altKey || event.isComposing) return;
      event.preventDefault();
      this.send();
    });
    // Escape stops an answer being written (and then does not also close the panel).
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.state !== "idle") {
        event.preventDefault();
        event.stopPropagation();
        this.stop();
      }
    });
    this.stopButton.addEventListener("click", () => this.stop());
    this.newButton.addEventListener("click", () => this.startOver());
    root.querySelector("[data-assistant-fieldset]").disabled = false;
    this.updateEmpty();
  }

  // The conversation so far, once (again after a failure).
  load() {
    if (!this.loading) {
      this.loading = this.fetchHistory().then((ok) => {
        if (!ok) this.loading = null;
      });
    }
    return this.loading;
  }

  async fetchHistory() {
    const epoch = this.epoch;
    this.setStatus("Loading the conversation…");
    let body;
    try {
      const response = await fetch(API, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        this.setStatus(await errorMessage(response), "error");
        return false;
      }
      body = await response.json();
    } catch {
      this.setStatus(OFFLINE, "error");
      return false;
    }
    if (epoch !== this.epoch) return true; // started over meanwhile
    if (this.state !== "idle" || this.messages.childElementCount) {
      this.setStatus(""); // the shopper was quicker: keep what is on screen
      return true;
    }
    this.conversationId = body.conversation_id || null;
    for (const message of list(body.messages)) this.addMessage(message);
    this.scrollToEnd();
    this.setStatus("");
    return true;
  }

  focus() {
    this.input.focus();
  }

  setStatus(text, kind = "info") {
    this.status.textContent = text;
    this.status.classList.toggle("text-danger", kind === "error");
    this.status.classList.toggle("text-body-secondary", kind === "info");
  }

  setState(state) {
    const hadFocus = this.root.contains(document.activeElement) ? document.activeElement : null;
    this.state = state;
    this.root.dataset.state = state;
    const busy = state !== "idle";
    this.sendButton.disabled = busy;
    this.stopButton.hidden = !busy;
    this.input.readOnly = state === "pending";
    this.messages.setAttribute("aria-busy", String(busy));
    // A button that just went away (or was disabled) leaves the focus in the text box.
    if (hadFocus && (hadFocus.hidden || hadFocus.disabled)) this.focus();
  }

  updateEmpty() {
    if (this.empty) this.empty.hidden = this.messages.childElementCount > 0;
  }

  // Keeps the newest message in view, unless the shopper scrolled up to read.
  follow(change) {
    const list = this.messages;
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    change();
    if (atEnd) this.scrollToEnd();
  }

  scrollToEnd() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  // A message as a list item: who, the text, product cards, a note, the rating buttons.
  addMessage(message) {
    const role = message.role === "user" ? "user" : "assistant";
    const item = element("li", `assistant-message assistant-message-${role}`);
    item.dataset.role = role;
    item.append(element("p", "assistant-who", role === "user" ? "You" : "Assistant"));
    const bubble = element("div", "assistant-bubble");
    item.append(bubble);
    if (role === "assistant") {
      const products = element("ul", "assistant-products list-unstyled");
      products.setAttribute("aria-label", "Products");
      products.hidden = true;
      const note = element("p", "assistant-note small");
      note.hidden = true;
      item.append(products, note);
    }
    if (role === "assistant" && message.html) {
      bubble.innerHTML = message.html; // sanitized by the server: see the top of this file
    } else {
      bubble.textContent = String(message.text ?? "");
    }
    this.follow(() => {
      this.messages.append(item);
      this.updateEmpty();
    });
    if (role === "assistant") {
      this.showProducts(item, message.products);
      this.setMessageStatus(item, message.status || "complete", message.notice, message.live);
      if (Number.isInteger(message.id)) {
        item.dataset.messageId = String(message.id);
        if (message.status !== "streaming") this.showRating(item, message.rating ?? null);
      }
    }
    return item;
  }

  showProducts(item, products) {
    const cards = list(products);
    if (!cards.length) return;
    const holder = item.querySelector(".assistant-products");
    holder.replaceChildren(...cards.map((card) => this.productCard(card)));
    holder.hidden = false;
    if (this.state !== "idle") this.scrollToEnd();
  }

  productCard(card) {
    const item = element("li", "assistant-card");
    const image = element("img", "assistant-card-image");
    const src = safeUrl(card.image_url);
    if (src) image.src = src;
    image.alt = ""; // the link names the product
    image.width = 64;
    image.height = 48;
    image.loading = "lazy";
    const body = element("div", "assistant-card-body");
    const name = element("a", "assistant-card-name stretched-link", String(card.name ?? ""));
    const href = safeUrl(card.url);
    if (href) name.href = href;
    body.append(name);
    if (card.category) body.append(element("span", "assistant-card-category", String(card.category)));
    item.append(image, body, element("span", "assistant-card-price", String(card.price ?? "")));
    return item;
  }

  // `live`: the answer is being written on this page right now, so it needs no note.
  setMessageStatus(item, status, notice, live = false) {
    item.dataset.status = status;
    item.querySelector(".assistant-bubble").classList.toggle("is-streaming", live);
    const note = item.querySelector(".assistant-note");
    const text = notice || (live ? "" : NOTES[status] || "");
    note.textContent = text;
    note.hidden = !text;
    note.classList.toggle("text-danger", status === "failed");
    note.classList.toggle("text-body-secondary", status !== "failed");
  }

  showRating(item, rating) {
    let group = item.querySelector(".assistant-rating");
    if (!group) {
      group = element("div", "assistant-rating");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Rate this answer");
      for (const [value, label] of RATINGS) {
        const button = element("button", "btn btn-sm btn-outline-secondary", label);
        button.type = "button";
        button.dataset.rating = String(value);
        button.setAttribute("aria-label", label);
        button.addEventListener("click", () => this.rate(item, value));
        group.append(button);
      }
      item.append(group);
    }
    item.dataset.rating = rating === 1 || rating === -1 ? String(rating) : "";
    for (const button of group.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.rating) === rating));
    }
  }

  async rate(item, value) {
    if (item.classList.contains("is-rating")) return; // one at a time
    const current = Number(item.dataset.rating || 0);
    const rating = current === value ? 0 : value; // pressing it again takes it back
    item.classList.add("is-rating");
    try {
      const response = await csrfFetch(`${API}/messages/${item.dataset.messageId}/rating`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating }),
      });
      if (!response.ok) {
        this.setStatus(await errorMessage(response), "error");
        return;
      }
      const body = await response.json();
      this.showRating(item, body.rating ?? null);
      this.setStatus(body.rating ? "Thanks for the feedback." : "Rating removed.");
    } catch {
      this.setStatus(OFFLINE, "error");
    } finally {
      item.classList.remove("is-rating");
    }
  }

  async send() {
    if (this.state !== "idle") {
      this.setStatus("Wait for this answer, or press Escape to stop it.");
      return;
    }
    const text = this.input.value.trim();
    if (!text) {
      this.setStatus("Type a question first.", "error");
      this.focus();
      return;
    }
    if (this.loading) await this.loading; // history first, so the order on screen is right
    if (this.state !== "idle") return;
    const controller = new AbortController();
    this.controller = controller;
    this.setState("pending");
    this.setStatus("Sending…");
    this.focus();
    const question = this.addMessage({ role: "user", text });

    let response;
    try {
      response = await fetch(API, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "X-CSRFToken": await csrfToken(),
        },
        body: JSON.stringify({ conversation_id: this.conversationId, message: text }),
        signal: controller.signal,
      });
    } catch {
      // The question never got an answer: take it back and leave the text to send again.
      this.refused(question, controller.signal.aborted ? "Stopped." : OFFLINE);
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      const message = response.ok
        ? "The assistant sent an unexpected answer. Please try again."
        : await errorMessage(response);
      this.refused(question, message);
      return;
    }

    this.input.value = "";
    this.setState("streaming");
    this.setStatus("The assistant is answering…");
    const answer = this.addMessage({ role: "assistant", text: "", status: "streaming", live: true });
    await this.readAnswer(response, answer, controller);
  }

  refused(question, message) {
    question.remove();
    this.updateEmpty();
    this.controller = null;
    this.setState("idle");
    this.setStatus(message, message === "Stopped." ? "info" : "error");
    this.focus();
  }

  async readAnswer(response, answer, controller) {
    const bubble = answer.querySelector(".assistant-bubble");
    const written = document.createTextNode("");
    bubble.append(written);
    let finished = false;
    let error = null;
    try {
      for await (const { name, data } of serverEvents(response)) {
        if (!data || typeof data !== "object") continue;
        if (name === "token") {
          this.follow(() => written.appendData(String(data.text ?? "")));
        } else if (name === "products") {
          this.showProducts(answer, data.products);
        } else if (name === "error") {
          error = String(data.message || CUT_OFF);
          this.setMessageStatus(answer, "failed", error);
        } else if (name === "done") {
          finished = true;
          this.finishAnswer(answer, data, error);
        }
      }
      if (!finished) this.setMessageStatus(answer, "failed", error || CUT_OFF);
      if (finished && !error) this.setStatus("");
      else this.setStatus(error || CUT_OFF, "error");
    } catch {
      if (controller.signal.aborted) {
        this.setMessageStatus(answer, "stopped");
        this.setStatus("Answer stopped.");
      } else {
        this.setMessageStatus(answer, "failed", error || CUT_OFF);
        this.setStatus(error || CUT_OFF, "error");
      }
    } finally {
      if (this.controller === controller) this.controller = null;
      this.setState("idle");
      this.follow(() => {});
    }
  }

  finishAnswer(answer, data, error) {
    if (data.conversation_id) this.conversationId = String(data.conversation_id);
    const status = typeof data.status === "string" ? data.status : "complete";
    if (data.html) {
      answer.querySelector(".assistant-bubble").innerHTML = data.html; // sanitized by the server
    }
    this.setMessageStatus(answer, status, data.notice || (status === "failed" ? error : null));
    if (Number.isInteger(data.message_id)) {
      answer.dataset.messageId = String(data.message_id);
      this.showRating(answer, null);
    }
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  async startOver() {
    this.stop();
    try {
      const response = await csrfFetch(`${API}/new`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      if (!response.ok) {
        this.setStatus(await errorMessage(response), "error");
        return;
      }
    } catch {
      this.setStatus(OFFLINE, "error");
      return;
    }
    this.epoch += 1;
    this.conversationId = null;
    this.loading = Promise.resolve(); // nothing more to load
    this.messages.replaceChildren();
    this.updateEmpty();
    this.setStatus("New conversation started.");
    this.focus();
  }
}

function bind() {
  for (const root of document.querySelectorAll("[data-assistant]")) {
    if (root.assistantChat) continue;
    const chat = new Chat(root);
    root.assistantChat = chat;
    if (root.dataset.assistantLoad === "page") chat.load();
  }
  // The panel is `hidden` while closed (see _chat.html); it loads the conversation when
  // first opened, and then takes the focus.
  for (const panel of document.querySelectorAll("[data-assistant-panel]")) {
    const root = panel.querySelector("[data-assistant]");
    if (!root || !root.assistantChat) continue;
    panel.addEventListener("show.bs.offcanvas", () => {
      panel.hidden = false;
      void panel.offsetWidth; // lay it out off-screen first, so it slides in
      root.assistantChat.load();
    });
    panel.addEventListener("hidden.bs.offcanvas", () => {
      panel.hidden = true;
    });
    panel.addEventListener("shown.bs.offcanvas", () => {
      root.assistantChat.scrollToEnd();
      root.assistantChat.focus();
    });
  }
  for (const toggle of document.querySelectorAll("[data-assistant-toggle]")) toggle.hidden = false;
}

bind();
