// The voice console: hold-to-talk or hands-free speech -> /asr/live -> /api/chat/stream -> /synthesize/stream.

import { Microphone, Player, playWavStream, wavBlob } from "./audio.js";
import { speakable, splitReadyClauses } from "./clauses.js";
import { language, otherLanguage, setLanguage, t } from "./i18n.js";
import { SERVICE_NAMES, ServiceError, Services, ndjson } from "./services.js";

const $ = (id) => document.getElementById(id);
const el = {
  partial: $("partial"), final: $("final"), reply: $("reply"), latency: $("latency"), error: $("error"),
  talk: $("talk"), handsFree: $("hands-free"), language: $("language"), style: $("style"), system: $("system"),
  maxTokens: $("max-tokens"), history: $("history"), status: document.querySelector("[data-testid=status]"),
};
const LABELS = { asr: "ASR", llm: "LLM", tts: "TTS", embedding: "Embeddings" };
const HEALTH_EVERY_MS = 5000;
const RECONNECT_MS = 1000;
const REFERENCE_SECONDS = 5;

let services = null;
const mic = new Microphone();
const player = new Player();
let messages = []; // the conversation sent to the LLM
let live = null; // the open LiveSession
let turn = null; // the Turn being answered
let reference = null; // {blob, name, seconds}: prompt_audio for TTS
let recorder = null; // frames of a reference recording in progress
let holding = false; // the talk button or space bar is down

function setState(name) {
  updatePlayed(); // so the played seconds are current whenever the state changes
  document.body.dataset.state = name;
}
const restingState = () => (el.handsFree.checked && live ? "listening" : "idle");

function showError(error) {
  let text = error instanceof ServiceError
    ? error.unreachable
      ? t("unreachable", { service: LABELS[error.service], url: services.urls[error.service] })
      : t("failed", { service: LABELS[error.service], message: error.message })
    : String(error.message || error);
  el.error.textContent = text;
  el.error.dataset.service = error.service || "";
  console.warn(text);
}

function clearError() {
  el.error.textContent = "";
  el.error.dataset.service = "";
}

/** One live transcription connection: a hold-to-talk press ("hold") or hands-free listening ("free"). */
class LiveSession {
  constructor(mode) {
    this.mode = mode;
    this.finals = [];
    this.pending = [];
    this.marks = []; // [samples sent up to this frame, when it was captured]
    this.samples = 0;
    this.closedByUs = false;
    this.socket = services.liveSocket({ language: el.language.value, sample_rate: String(mic.sampleRate) });
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () => {
      for (const frame of this.pending) this.socket.send(frame);
      this.pending = [];
    };
    this.socket.onmessage = (message) => this.event(JSON.parse(message.data));
    this.socket.onclose = () => this.closed();
  }

  send(samples, capturedAt) {
    if (this.ending) return; // the server refuses audio after "end"
    this.samples += samples.length;
    this.marks.push([this.samples, capturedAt]);
    if (this.marks.length > 1500) this.marks.shift();
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(samples);
    else if (this.socket.readyState === WebSocket.CONNECTING) this.pending.push(samples);
  }

  /** When the sample at ``seconds`` into the session was captured (performance.now() time). */
  capturedAt(seconds) {
    const index = seconds * mic.sampleRate;
    const mark = this.marks.find(([sent]) => sent >= index);
    return mark ? mark[1] : performance.now();
  }

  end() {
    this.ending = true;
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ event: "end" }));
    else this.close();
  }

  close() {
    this.closedByUs = true;
    this.socket.close();
  }

  event(event) {
    if (event.error) {
      this.failed = event.error;
      if (event.error.type === "authentication_error") {
        services.requestKey("asr").then((got) => got && this.mode === "free" && el.handsFree.checked && listenHandsFree());
      }
      showError(new ServiceError("asr", event.error.message, { code: event.error.code }));
    } else if ("partial_text" in event) {
      const text = event.partial_text.trim();
      if (text) this.partials = (this.partials || 0) + 1;
      el.partial.textContent = [...this.finals, text].join(" ");
      if (this.mode === "free" && [...text].length >= 2 && turn && !turn.finished) bargeIn();
    } else if (event.final) {
      const text = event.text.trim();
      if (text) this.finals.push(text);
      this.lastEnd = event.end;
      el.partial.textContent = this.finals.join(" ");
      el.partial.dataset.finals = String(this.finals.length);
      if (this.mode === "free" && text) {
        this.finals = [];
        startTurn(text, this.capturedAt(event.end), performance.now());
        this.countPartials();
      }
    } else if (event.event === "done" && this.mode === "hold") {
      const text = (event.text || this.finals.join(" ")).trim();
      const spoken = this.lastEnd === undefined ? performance.now() : this.capturedAt(this.lastEnd);
      const speechEnd = Math.min(spoken, this.releasedAt || performance.now());
      if (text) {
        startTurn(text, speechEnd, performance.now());
        this.countPartials();
      } else {
        el.partial.textContent = t("heardNothing");
        setState(restingState());
      }
    }
  }

  /** For automation: how many partial transcripts came before the final text now shown. */
  countPartials() {
    el.final.dataset.partialsBefore = String(this.partials || 0);
    this.partials = 0;
  }

  closed() {
    if (live === this) live = null;
    if (this.closedByUs || this.mode !== "free" || !el.handsFree.checked) return;
    if (this.failed && this.failed.type === "authentication_error") return; // reopened once the key is given
    setTimeout(() => el.handsFree.checked && !live && listenHandsFree(), RECONNECT_MS);
  }
}

/** One answer: the LLM's stream, spoken clause by clause as it arrives, played in order. */
class Turn {
  constructor(text, speechEnd, finalAt) {
    this.text = text;
    this.speechEnd = speechEnd;
    this.times = { final: finalAt - speechEnd };
    this.reply = "";
    this.abortController = new AbortController();
    this.speech = Promise.resolve();
    this.finished = false;
    this.ttsFailed = false;
  }

  async run() {
    const signal = this.abortController.signal;
    messages.push({ role: "user", content: this.text });
    const system = el.system.value.trim();
    const body = {
      messages: system ? [{ role: "system", content: system }, ...messages] : [...messages],
      max_tokens: Number(el.maxTokens.value) || 160,
    };
    let buffer = "";
    try {
      const response = await services.call("llm", "/api/chat/stream", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
      });
      for await (const line of ndjson(response)) {
        if (line.event === "error") throw new ServiceError("llm", line.message || "the answer stopped");
        if (typeof line.delta !== "string") continue;
        if (this.times.token === undefined) this.mark("token");
        this.reply += line.delta;
        el.reply.textContent = this.reply;
        const cut = splitReadyClauses(buffer + line.delta);
        buffer = cut.rest;
        cut.clauses.forEach((clause) => this.speak(clause));
      }
      splitReadyClauses(buffer, true).clauses.forEach((clause) => this.speak(clause));
      el.reply.dataset.done = "true";
      el.reply.dataset.textDoneAt = String(performance.now());
    } catch (error) {
      if (signal.aborted) return;
      showError(error);
    } finally {
      if (this.reply.trim()) messages.push({ role: "assistant", content: this.reply.trim() });
    }
    await this.speech;
    this.textAndSpeechDone = true;
    if (!player.playing) this.finish();
  }

  mark(name) {
    this.times[name] = performance.now() - this.speechEnd;
    showLatency(this.times);
  }

  speak(clause) {
    if (!speakable(clause)) return;
    this.speech = this.speech.then(() => this.synthesize(clause));
  }

  async synthesize(clause) {
    const signal = this.abortController.signal;
    if (signal.aborted || this.ttsFailed) return;
    const form = new FormData();
    form.set("text", clause);
    if (el.style.value) form.set("style", el.style.value);
    if (reference) form.set("prompt_audio", reference.blob, reference.name);
    try {
      const response = await services.call("tts", "/synthesize/stream", { method: "POST", body: form, signal });
      await playWavStream(response, (samples, rate) => signal.aborted || player.play(samples, rate));
    } catch (error) {
      if (signal.aborted) return;
      this.ttsFailed = true; // the text goes on; one message is enough
      showError(error);
    }
  }

  audioStarted(at) {
    this.times.audio = at - this.speechEnd;
    el.reply.dataset.firstAudioAt = String(at);
    showLatency(this.times);
    setState("speaking");
  }

  /** Barge-in: stop the audio and the reply in progress. */
  abort() {
    if (this.finished) return;
    el.reply.dataset.interrupted = document.body.dataset.state;
    this.abortController.abort();
    player.stop();
    el.reply.textContent = `${this.reply} ${t("interrupted")}`;
    this.finish();
  }

  finish() {
    if (this.finished) return;
    this.finished = true;
    if (turn === this) setState(restingState());
  }
}

function showLatency(times) {
  const seconds = (value) => (value === undefined ? "…" : `${(value / 1000).toFixed(2)} s`);
  el.latency.textContent = t("latency", { final: seconds(times.final), token: seconds(times.token), audio: seconds(times.audio) });
  for (const [name, value] of Object.entries(times)) el.latency.dataset[`${name}Ms`] = String(Math.round(value));
}

function archiveTurn() {
  if (!el.final.textContent) return;
  for (const [role, text] of [["user", el.final.textContent], ["assistant", el.reply.textContent]]) {
    const item = document.createElement("li");
    item.className = role;
    item.textContent = text;
    el.history.append(item);
  }
}

function startTurn(text, speechEnd, finalAt) {
  if (turn && !turn.finished) turn.abort();
  archiveTurn();
  clearError();
  player.stop();
  player.reset();
  el.final.textContent = text;
  el.partial.textContent = "";
  el.reply.textContent = "";
  for (const name of ["done", "textDoneAt", "firstAudioAt", "interrupted"]) delete el.reply.dataset[name];
  el.latency.textContent = "";
  for (const name of Object.keys(el.latency.dataset)) if (name.endsWith("Ms")) delete el.latency.dataset[name];
  setState("thinking");
  turn = new Turn(text, speechEnd, finalAt);
  el.reply.dataset.turn = String(Number(el.reply.dataset.turn || 0) + 1);
  showLatency(turn.times);
  turn.run();
}

function bargeIn() {
  const state = document.body.dataset.state;
  const queued = player.queuedSeconds();
  const playing = player.playing;
  if (turn && !turn.finished) turn.abort();
  const played = player.stop();
  if (state === "thinking" || state === "speaking") {
    // for automation: what was cut short, and that nothing plays any more
    document.body.dataset.bargeIns = String(Number(document.body.dataset.bargeIns || 0) + 1);
    document.body.dataset.lastBargeIn = JSON.stringify({ state, played, queued, wasPlaying: playing, playingAfter: player.playing });
  }
}

player.onStart = (at) => turn && !turn.finished && turn.audioStarted(at);
player.onIdle = () => {
  if (turn && turn.textAndSpeechDone) turn.finish();
};

function updatePlayed() {
  el.reply.dataset.playedSeconds = player.playedSeconds().toFixed(2);
  el.reply.dataset.queuedSeconds = player.queuedSeconds().toFixed(2);
  el.reply.dataset.audioPlaying = String(player.playing);
}

// ---- talking

async function ensureMic() {
  try {
    await mic.start();
    return true;
  } catch (error) {
    showError(new Error(t("micFailed", { message: error.message })));
    return false;
  }
}

mic.onFrame = (samples, at) => {
  if (live) live.send(samples, at);
  if (recorder) recorder.push(samples);
};

async function press() {
  if (el.handsFree.checked || holding || (live && live.mode === "hold")) return;
  holding = true;
  player.unlock();
  bargeIn();
  if (!(await ensureMic()) || !holding) return;
  clearError();
  live = new LiveSession("hold");
  for (const frame of mic.preRoll()) live.send(frame, performance.now());
  el.partial.textContent = "";
  el.talk.setAttribute("aria-pressed", "true");
  el.talk.firstElementChild.textContent = t("listening");
  setState("listening");
}

function release() {
  holding = false;
  if (!live || live.mode !== "hold" || live.releasedAt) return;
  live.releasedAt = performance.now();
  live.end();
  el.talk.setAttribute("aria-pressed", "false");
  el.talk.firstElementChild.textContent = t("holdToTalk");
  setState("thinking");
}

async function listenHandsFree() {
  if (!(await ensureMic())) {
    el.handsFree.checked = false;
    return;
  }
  if (live) live.close();
  live = new LiveSession("free");
  el.talk.disabled = true;
  if (!turn || turn.finished) setState("listening");
}

function stopHandsFree() {
  if (live) live.close();
  live = null;
  el.talk.disabled = false;
  if (!turn || turn.finished) setState("idle");
}

const typing = (target) => target instanceof HTMLElement && target.matches("input, textarea, select, [contenteditable]");

function wireTalking() {
  el.talk.addEventListener("pointerdown", (event) => {
    el.talk.setPointerCapture(event.pointerId);
    press();
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) el.talk.addEventListener(name, release);
  document.addEventListener("keydown", (event) => {
    if (event.code === "Space" && !typing(event.target)) {
      event.preventDefault();
      if (!event.repeat) press();
    } else if (event.key === "Escape") bargeIn();
  });
  document.addEventListener("keyup", (event) => {
    if (event.code === "Space" && !typing(event.target)) {
      event.preventDefault();
      release();
    }
  });
  el.handsFree.addEventListener("change", () => {
    player.unlock();
    if (el.handsFree.checked) listenHandsFree();
    else stopHandsFree();
  });
  $("new-chat").addEventListener("click", () => {
    bargeIn();
    messages = [];
    el.history.replaceChildren();
    for (const element of [el.partial, el.final, el.reply, el.latency]) element.textContent = "";
  });
}

// ---- settings

async function loadStyles() {
  try {
    const styles = await services.json("tts", "/styles");
    el.style.replaceChildren(
      ...styles.styles.map((style) => {
        const option = new Option(`${style.name} (${style.language})`, style.name);
        option.title = style.description || "";
        option.selected = style.name === styles.default;
        return option;
      }),
    );
  } catch (error) {
    el.style.replaceChildren(new Option("—", ""));
    showError(error);
  }
}

function showReference() {
  const stateText = $("reference-state");
  stateText.dataset.i18n = reference ? "" : "noReference";
  stateText.textContent = reference ? t("referenceSet", { name: reference.name, seconds: reference.seconds }) : t("noReference");
}

function wireSettings() {
  const button = $("record-reference");
  button.addEventListener("click", async () => {
    if (recorder || !(await ensureMic())) return;
    recorder = [];
    button.textContent = t("recording");
    setTimeout(() => {
      const frames = recorder;
      recorder = null;
      const samples = new Int16Array(frames.reduce((n, frame) => n + frame.length, 0));
      let offset = 0;
      for (const frame of frames) samples.set(frame, (offset += frame.length) - frame.length);
      reference = { blob: wavBlob(samples, mic.sampleRate), name: "microphone.wav", seconds: REFERENCE_SECONDS };
      button.textContent = t("recordReference");
      showReference();
    }, REFERENCE_SECONDS * 1000);
  });
  $("reference-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    reference = file ? { blob: file, name: file.name, seconds: "?" } : null;
    showReference();
  });
  $("clear-reference").addEventListener("click", () => {
    reference = null;
    $("reference-file").value = "";
    showReference();
  });
  $("ui-language").addEventListener("click", () => {
    const wasDefault = el.system.value === t("defaultSystem");
    setLanguage(otherLanguage());
    if (wasDefault) el.system.value = t("defaultSystem");
    showReference();
    refreshHealth();
  });
  $("key-button").addEventListener("click", async () => {
    await services.requestKey("");
    loadStyles();
  });
}

function askForKey(service) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = service ? `${t("needsKey", { service: LABELS[service] })} ${t("keyNeeded")}` : t("keyNeeded");
  $("key-input").value = services ? services.key : "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? $("key-input").value.trim() : null), { once: true });
    dialog.showModal();
  });
}

// ---- status strip and embeddings panel

async function refreshHealth() {
  await Promise.all(
    SERVICE_NAMES.map(async (name) => {
      const health = await services.health(name);
      const item = el.status.querySelector(`[data-service=${name}]`);
      item.dataset.state = health.state;
      const detail = health.state === "down" ? t("downDetail", { url: health.detail }) : health.state === "ok" ? health.detail : t("loading");
      item.querySelector(".detail").textContent = `${t(health.state === "ok" ? "ok_state" : health.state)} · ${detail}`;
      item.title = detail;
    }),
  );
  el.status.dataset.checked = String(Number(el.status.dataset.checked || 0) + 1);
}

function wireRerank() {
  const results = $("rerank-results");
  $("rerank-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = $("rerank-query").value.trim();
    const candidates = $("rerank-candidates").value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (!query || !candidates.length) return;
    try {
      const body = await services.json("embedding", "/rerank", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query, candidates }),
      });
      results.replaceChildren(
        ...body.results.map((result) => {
          const item = document.createElement("li");
          item.dataset.index = String(result.index);
          item.dataset.score = String(result.score);
          const bar = document.createElement("meter");
          bar.min = -1;
          bar.max = 1;
          bar.value = result.score;
          const score = document.createElement("code");
          score.textContent = result.score.toFixed(3);
          const text = document.createElement("span");
          text.textContent = result.text;
          item.append(score, bar, text);
          return item;
        }),
      );
      results.dataset.model = body.model;
    } catch (error) {
      showError(error);
    }
  });
}

async function init() {
  setLanguage(language());
  el.system.value = t("defaultSystem");
  showReference();
  wireTalking();
  wireSettings();
  wireRerank();
  services = await Services.load(askForKey);
  setInterval(updatePlayed, 100);
  await refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  await loadStyles();
  document.body.dataset.ready = "true";
}

init();
