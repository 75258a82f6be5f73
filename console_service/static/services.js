// Talking to the services: where they are, the API key, errors a person can read, the voice agent's socket.

const KEY_STORAGE = "suite-api-key";
export const SERVICE_NAMES = ["asr", "llm", "tts", "embedding"];

/** An error a person can read, naming the service that failed. */
export class ServiceError extends Error {
  constructor(service, message, { status = 0, code = "", unreachable = false } = {}) {
    super(message);
    this.service = service;
    this.status = status;
    this.code = code;
    this.unreachable = unreachable;
  }
}

export class Services {
  constructor(urls, askForKey) {
    this.urls = urls; // {asr, llm, tts, embedding} -> base URL
    this.askForKey = askForKey; // async (reason) => key or null
    this.keyPromise = null;
  }

  static async load(askForKey) {
    const response = await fetch("config.json", { cache: "no-store" });
    const config = await response.json();
    return new Services(config.services, askForKey);
  }

  get key() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  }

  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  /** Ask for the key once, even when several requests are refused at the same time. */
  async requestKey(reason) {
    if (!this.keyPromise) {
      this.keyPromise = (async () => {
        const key = await this.askForKey(reason);
        if (key) this.key = key;
        return Boolean(key);
      })().finally(() => {
        this.keyPromise = null;
      });
    }
    return this.keyPromise;
  }

  headers(extra = {}) {
    return this.key ? { ...extra, Authorization: `Bearer ${this.key}` } : extra;
  }

  /** fetch() a service route; 401 asks for the key and retries once; non-2xx throws a ServiceError. */
  async call(service, path, init = {}) {
    const url = `${this.urls[service]}${path}`;
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(url, { ...init, headers: this.headers(init.headers || {}) });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        throw new ServiceError(service, `not reachable at ${this.urls[service]}`, { unreachable: true });
      }
      if (response.ok) return response;
      if (response.status === 401 && attempt === 0 && (await this.requestKey(service))) continue;
      throw await errorFrom(service, response);
    }
  }

  async json(service, path, init = {}) {
    return (await this.call(service, path, init)).json();
  }

  /** The ``/health`` of a service: {state: ok|loading|down, detail}. No key needed. */
  async health(service) {
    try {
      const response = await fetch(`${this.urls[service]}/health`, { cache: "no-store" });
      const body = await response.json().catch(() => ({}));
      if (response.ok) return { state: "ok", detail: body.model || body.default_model || "" };
      return { state: "loading", detail: body.status || `HTTP ${response.status}` };
    } catch {
      return { state: "down", detail: this.urls[service] };
    }
  }

  /** The voice agent's WebSocket (this page's own origin); the key travels as a subprotocol (browsers cannot set headers). */
  agentSocket() {
    const url = new URL("v1/realtime", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const key = this.key;
    if (!key) return new WebSocket(url, ["realtime"]);
    if (/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key)) return new WebSocket(url, ["realtime", `openai-insecure-api-key.${key}`]);
    url.searchParams.set("api_key", key); // not a valid subprotocol token: the documented query parameter
    return new WebSocket(url, ["realtime"]);
  }
}

async function errorFrom(service, response) {
  let message = `HTTP ${response.status}`;
  let code = "";
  try {
    const body = await response.json();
    message = body.error?.message || message;
    code = body.error?.code || "";
  } catch {
    // not JSON: keep the status
  }
  return new ServiceError(service, message, { status: response.status, code });
}
