// The voice console: hold-to-talk or hands-free conversation with the voice agent (the console's own
// /v1/realtime, OpenAI's Realtime protocol), which hears, answers and speaks; the page plays and shows it.

import { Agent } from "./agent.js";
import { Microphone, Player, RATE, fromBase64, resample } from "./audio.js";
import { language, setLanguage, t } from "./i18n.js";
import { askForKey, loadStyles, refreshHealth, wireRerank, wireSettings } from "./panels.js";
import { ServiceError, Services } from "./services.js";
import { archiveTurn, clearError, showError as showErrorIn, showLatency } from "./view.js";

const $ = (id) => document.getElementById(id);
const el = {
  partial: $("partial"), final: $("final"), reply: $("reply"), latency: $("latency"),
  talk: $("talk"), handsFree: $("hands-free"), language: $("language"), style: $("style"), system: $("system"),
  maxTokens: $("max-tokens"), temperature: $("temperature"), history: $("history"),
};
const HEALTH_EVERY_MS = 5000;
const RECONNECT_MS = 1000;
const SERVICE_OF_CODE = { llm_failed: "llm", tts_failed: "tts", upstream_closed: "asr", transcript_timeout: "asr" };
// answers to a cancel or truncate that crossed the reply's own end: nothing a person needs to see
const QUIET_CODES = new Set(["response_cancel_not_active", "item_not_found"]);
const CJK = /[\u3400-\u9fff\uf900-\ufaff]/u;

let services = null;
const mic = new Microphone();
const player = new Player();
let agent = null; // the open Agent connection
let mode = "off"; // "hold" while the talk button is down, "free" while hands-free is on
let holding = false; // the talk button or the space bar is down
let committed = false; // a hold-to-talk turn was committed: its transcript asks for the answer
let turn = null; // the Turn on screen
let said = []; // the conversation as the agent holds it, [{role, text}], replayed if the connection is lost
let hearing = { text: "", partials: 0 }; // the person's turn being transcribed
let speechEnd = null; // when the person's last turn ended (performance.now() time)

function setState(name) {
  updatePlayed(); // so the played seconds are current whenever the state changes
  document.body.dataset.state = name;
}
const restingState = () => (mode === "free" ? "listening" : "idle");
const showError = (error) => showErrorIn(error, services.urls);

/** One question and its answer: the agent's response, played as its audio arrives. */
class Turn {
  constructor(text, end) {
    this.text = text;
    this.speechEnd = end;
    this.times = { final: performance.now() - end };
    this.reply = "";
    this.responseId = null;
    this.itemId = null; // the reply's conversation item, once the agent added it
    this.active = false; // between response.created and response.done
    this.finished = false;
    this.cut = false; // interrupted by the person
    this.kept = null; // after a cut: what the agent kept of the reply (what was heard)
  }

  mark(name) {
    this.times[name] = performance.now() - this.speechEnd;
    showLatency(this.times);
  }

  audioStarted(at) {
    this.times.audio = at - this.speechEnd;
    el.reply.dataset.firstAudioAt = String(at);
    showLatency(this.times);
    setState("speaking");
  }

  finish() {
    if (this.finished) return;
    this.finished = true;
    if (turn === this) setState(restingState());
  }
}

// ---- the conversation's events
function onEvent(event) {
  const ours = turn && event.response_id !== undefined && event.response_id === turn.responseId && !turn.cut;
  switch (event.type) {
    case "input_audio_buffer.speech_started":
      if (mode === "free") interrupt(true); // the agent cancels the reply itself; the page stops playing it
      break;
    case "input_audio_buffer.speech_stopped":
      speechEnd = (agent && agent.capturedAt(event.audio_end_ms)) || performance.now();
      break;
    case "conversation.item.input_audio_transcription.delta":
      hearing.text += event.delta;
      if (event.delta.trim()) hearing.partials += 1;
      el.partial.textContent = hearing.text;
      break;
    case "conversation.item.input_audio_transcription.completed":
      heard(event.transcript.trim());
      break;
    case "response.created":
      if (!turn || turn.finished || turn.responseId) break; // not asked by this page's turn
      turn.responseId = event.response.id;
      turn.active = true;
      player.stop();
      player.reset();
      break;
    case "response.output_item.added":
      if (ours) turn.itemId = event.item.id;
      break;
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta":
      if (!ours) break;
      if (turn.times.token === undefined) turn.mark("token");
      turn.reply += event.delta;
      el.reply.textContent = turn.reply;
      break;
    case "response.output_audio.delta":
      if (ours) player.play(fromBase64(event.delta), RATE);
      break;
    case "response.done":
      if (turn && event.response.id === turn.responseId) answered(event.response.status);
      break;
    case "conversation.item.retrieved":
      if (turn && turn.itemId === event.item.id) keep(event.item.content[0].transcript || "");
      break;
    case "error":
      agentError(event.error || {});
      break;
    default:
  }
}

/** The person's turn, transcribed: a new question (or the rest of one cut short), then its answer. */
function heard(text) {
  el.partial.dataset.finals = String(Number(el.partial.dataset.finals || 0) + 1);
  const partials = hearing.partials;
  hearing = { text: "", partials: 0 };
  const askedByHold = committed;
  committed = false;
  if (!text) {
    if (askedByHold) {
      el.partial.textContent = t("heardNothing");
      setState(restingState());
    }
    return;
  }
  said.push({ role: "user", text });
  if (turn && !turn.finished) interrupt(false);
  const continued = turn && turn.cut && !turn.kept;
  if (continued) {
    // the speaker paused, the answer began, and they went on before hearing any of it: one question
    text = `${turn.text}${CJK.test(turn.text + text) ? "" : " "}${text}`;
    el.final.dataset.continued = String(Number(el.final.dataset.continued || 0) + 1);
  } else {
    archiveTurn();
  }
  clearError();
  el.final.textContent = text;
  el.final.dataset.partialsBefore = String(partials);
  el.partial.textContent = "";
  el.reply.textContent = "";
  for (const name of ["done", "textDoneAt", "firstAudioAt", "interrupted", "kept"]) delete el.reply.dataset[name];
  for (const name of Object.keys(el.latency.dataset)) if (name.endsWith("Ms")) delete el.latency.dataset[name];
  turn = new Turn(text, speechEnd === null ? performance.now() : speechEnd);
  speechEnd = null;
  el.reply.dataset.turn = String(Number(el.reply.dataset.turn || 0) + 1);
  showLatency(turn.times);
  setState("thinking");
  if (askedByHold) agent.send({ type: "response.create" }); // hands-free: the agent answers by itself
}

function answered(status) {
  turn.active = false;
  if (status === "completed" || status === "incomplete") {
    el.reply.dataset.done = "true";
    el.reply.dataset.textDoneAt = String(performance.now());
    turn.said = { role: "assistant", text: turn.reply.trim() };
    said.push(turn.said);
  }
  turn.textAndSpeechDone = true;
  if (!player.playing) turn.finish();
}

/** What the agent kept of a reply that was cut short: the next turns' context holds only that. */
function keep(text) {
  turn.kept = text;
  el.reply.dataset.kept = text;
  if (!turn.said) said.push((turn.said = { role: "assistant", text: "" }));
  turn.said.text = text.trim();
}

function agentError(error) {
  if (QUIET_CODES.has(error.code) || error.type === "authentication_error") return; // the close handles a key
  showError(new ServiceError(SERVICE_OF_CODE[error.code] || "agent", error.message || "failed", { code: error.code }));
}

/** Barge-in: stop the audio at once; the reply is cut where it was heard (``conversation.item.truncate``). */
function interrupt(byVoice) {
  const state = document.body.dataset.state;
  const queued = player.queuedSeconds();
  const playing = player.playing;
  const played = player.stop();
  if (turn && !turn.finished) {
    turn.cut = true;
    el.reply.dataset.interrupted = state;
    el.reply.textContent = `${turn.reply} ${t("interrupted")}`;
    if (turn.itemId && agent) {
      // also ends the reply when it is still in progress; the agent keeps only what was played
      agent.send({ type: "conversation.item.truncate", item_id: turn.itemId, content_index: 0, audio_end_ms: Math.floor(played * 1000) });
      agent.send({ type: "conversation.item.retrieve", item_id: turn.itemId });
    } else {
      turn.kept = "";
      if (turn.active && !byVoice && agent) agent.send({ type: "response.cancel" });
    }
    turn.finish();
  }
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

// ---- the connection
/** The session settings from the page's controls (``session.update``). */
function sessionConfig() {
  const temperature = el.temperature.value.trim() !== "" && el.temperature.checkValidity() ? Number(el.temperature.value) : null;
  return {
    type: "realtime",
    instructions: el.system.value.trim(),
    max_output_tokens: Math.min(4096, Math.max(1, Math.round(Number(el.maxTokens.value) || 160))),
    temperature,
    audio: {
      input: { transcription: { language: el.language.value || "auto" }, turn_detection: mode === "free" ? { type: "server_vad" } : null },
      output: el.style.value ? { voice: el.style.value } : {},
    },
  };
}

function configure() {
  if (agent) agent.send({ type: "session.update", session: sessionConfig() });
}

/** Configure the open conversation from the page's controls, or open one that first hears what was said so far. */
function connect() {
  if (agent && !agent.closed) {
    configure();
    return;
  }
  agent = new Agent(services.agentSocket(), { onEvent, onClose: closed });
  configure();
  for (const { role, text } of said.filter((entry) => entry.text)) {
    const part = role === "user" ? { type: "input_text", text } : { type: "output_text", text };
    agent.send({ type: "conversation.item.create", item: { type: "message", role, content: [part] } });
  }
}

function closed(which, close) {
  if (agent !== which) return;
  agent = null;
  if (turn && !turn.finished) turn.finish();
  const failure = which.failure;
  if (which.closedByUs || (failure && failure.code === "idle_timeout")) return; // the next turn reconnects
  if (failure && failure.type === "authentication_error") {
    services.requestKey("agent").then((got) => got && mode === "free" && connect());
    return;
  }
  showError(new ServiceError("agent", t("agentClosed", { message: (failure && failure.message) || close.reason || `code ${close.code}` })));
  if (mode === "free") setTimeout(() => mode === "free" && !agent && connect(), RECONNECT_MS);
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

function send(samples, at) {
  if (!agent || mode === "off") return;
  agent.append(resample(samples, mic.sampleRate, RATE), at);
  // for automation: how much audio this hold has sent (no transcript marks the end of a question while holding)
  if (mode === "hold") el.talk.dataset.heldSeconds = (Number(el.talk.dataset.heldSeconds) + samples.length / mic.sampleRate).toFixed(2);
}

mic.onFrame = send;

async function press() {
  if (el.handsFree.checked || holding || mode === "hold") return;
  holding = true;
  player.unlock();
  interrupt(false);
  if (!(await ensureMic()) || !holding) return;
  clearError();
  mode = "hold";
  el.talk.dataset.heldSeconds = "0";
  connect();
  hearing = { text: "", partials: 0 };
  for (const frame of mic.preRoll()) send(frame, performance.now());
  el.partial.textContent = "";
  el.talk.setAttribute("aria-pressed", "true");
  el.talk.firstElementChild.textContent = t("listening");
  setState("listening");
}

function release() {
  holding = false;
  if (mode !== "hold") return;
  mode = "off";
  speechEnd = performance.now();
  committed = true;
  if (agent) agent.send({ type: "input_audio_buffer.commit" });
  el.talk.setAttribute("aria-pressed", "false");
  el.talk.firstElementChild.textContent = t("holdToTalk");
  setState("thinking");
}

async function listenHandsFree() {
  if (!(await ensureMic())) {
    el.handsFree.checked = false;
    return;
  }
  mode = "free";
  connect();
  el.talk.disabled = true;
  if (!turn || turn.finished) setState("listening");
}

function stopHandsFree() {
  mode = "off";
  configure(); // no more turns from pauses
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
    } else if (event.key === "Escape") interrupt(false);
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
  for (const control of [el.system, el.maxTokens, el.temperature, el.style, el.language]) control.addEventListener("change", configure);
  $("new-chat").addEventListener("click", () => {
    interrupt(false);
    turn = null;
    said = [];
    if (agent) agent.close(); // the agent forgets the conversation with its connection
    agent = null;
    if (mode === "free") connect();
    el.history.replaceChildren();
    for (const element of [el.partial, el.final, el.reply, el.latency]) element.textContent = "";
  });
}

async function init() {
  setLanguage(language());
  el.system.value = t("defaultSystem");
  wireTalking();
  const reconnect = () => agent && (agent.close(), (agent = null), mode === "free" && connect());
  wireSettings({ services: () => services, showError, onLanguage: () => refreshHealth(services), onKey: reconnect });
  wireRerank(() => services, showError);
  services = await Services.load((service) => askForKey(service, services ? services.key : ""));
  setInterval(updatePlayed, 100);
  await refreshHealth(services);
  setInterval(() => refreshHealth(services), HEALTH_EVERY_MS);
  await loadStyles(services, showError);
  document.body.dataset.ready = "true";
}

init();
