// The voice console: hold-to-talk or hands-free speech -> /asr/live -> /api/chat/stream -> /synthesize/stream.

import { Microphone, Player, playWavStream } from "./audio.js";
import { speakable, splitReadyClauses } from "./clauses.js";
import { language, setLanguage, t } from "./i18n.js";
import { archiveTurn, clearError, showError as showErrorIn, showLatency } from "./view.js";
import { askForKey, currentReference, loadStyles, recordFrame, refreshHealth, wireRerank, wireSettings } from "./panels.js";
import { ServiceError, Services, ndjson } from "./services.js";

const $ = (id) => document.getElementById(id);
const el = {
  partial: $("partial"), final: $("final"), reply: $("reply"), latency: $("latency"), error: $("error"),
  talk: $("talk"), handsFree: $("hands-free"), language: $("language"), style: $("style"), system: $("system"),
  maxTokens: $("max-tokens"), temperature: $("temperature"), history: $("history"),
};
const HEALTH_EVERY_MS = 5000;
const RECONNECT_MS = 1000;
// a reply cut off before this much of it played counts as never given; measured when the page sees the new
// speech (its first partial), which comes 0.5-1 s after the speaker starts, more on a loaded machine
const HEARD_LITTLE_S = 1.5;

let services = null;
const mic = new Microphone();
const player = new Player();
let messages = []; // the conversation sent to the LLM
let live = null; // the open LiveSession
let turn = null; // the Turn being answered
let holding = false; // the talk button or space bar is down

function setState(name) {
  updatePlayed(); // so the played seconds are current whenever the state changes
  document.body.dataset.state = name;
}
const restingState = () => (el.handsFree.checked && live ? "listening" : "idle");
const showError = (error) => showErrorIn(error, services.urls);

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
    this.cutShort = false; // barged in before the user heard much: the next final continues this turn
  }

  async run() {
    const signal = this.abortController.signal;
    this.question = { role: "user", content: this.text };
    messages.push(this.question);
    const system = el.system.value.trim();
    const body = {
      messages: system ? [{ role: "system", content: system }, ...messages] : [...messages],
      max_tokens: Number(el.maxTokens.value) || 160,
    };
    if (el.temperature.value.trim() !== "" && el.temperature.checkValidity()) body.temperature = Number(el.temperature.value);
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
      if (this.reply.trim() && !this.cutShort) messages.push({ role: "assistant", content: this.reply.trim() });
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
    const reference = currentReference();
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

  /** Barge-in: stop the audio and the reply in progress; ``byVoice``: because the user speaks again. */
  abort(byVoice = true) {
    if (this.finished) return;
    this.cutShort = byVoice && player.playedSeconds() < HEARD_LITTLE_S;
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

const CJK = /[\u3400-\u9fff\uf900-\ufaff]/u;

function startTurn(text, speechEnd, finalAt) {
  if (turn && !turn.finished) turn.abort();
  const continued = turn && turn.cutShort;
  if (continued) {
    // the speaker paused, the answer began, and they went on: one question, asked again whole
    const asked = messages.lastIndexOf(turn.question);
    if (asked >= 0) messages.splice(asked);
    text = `${turn.text}${CJK.test(turn.text + text) ? "" : " "}${text}`;
    el.final.dataset.continued = String(Number(el.final.dataset.continued || 0) + 1);
  } else {
    archiveTurn();
  }
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

function bargeIn(byVoice = true) {
  const state = document.body.dataset.state;
  const queued = player.queuedSeconds();
  const playing = player.playing;
  if (turn && !turn.finished) turn.abort(byVoice);
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
  recordFrame(samples);
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
    } else if (event.key === "Escape") bargeIn(false);
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
    bargeIn(false);
    turn = null;
    messages = [];
    el.history.replaceChildren();
    for (const element of [el.partial, el.final, el.reply, el.latency]) element.textContent = "";
  });
}

async function init() {
  setLanguage(language());
  el.system.value = t("defaultSystem");
  wireTalking();
  wireSettings({ services: () => services, mic, ensureMic, showError, onLanguage: () => refreshHealth(services) });
  wireRerank(() => services, showError);
  services = await Services.load((service) => askForKey(service, services ? services.key : ""));
  setInterval(updatePlayed, 100);
  await refreshHealth(services);
  setInterval(() => refreshHealth(services), HEALTH_EVERY_MS);
  await loadStyles(services, showError);
  document.body.dataset.ready = "true";
}

init();
