// The console's side panels: settings (styles, reference recording, interface language, API key),
// the status strip and the embeddings (rerank) panel.

import { wavBlob } from "./audio.js";
import { otherLanguage, setLanguage, t } from "./i18n.js";
import { SERVICE_NAMES } from "./services.js";

const $ = (id) => document.getElementById(id);
export const LABELS = { asr: "ASR", llm: "LLM", tts: "TTS", embedding: "Embeddings" };
const REFERENCE_SECONDS = 5;

let reference = null; // {blob, name, seconds}: prompt_audio for TTS
let recorder = null; // frames of a reference recording in progress

/** The reference recording for TTS (``prompt_audio``), or null. */
export const currentReference = () => reference;

/** Hand a microphone frame to a reference recording in progress. */
export function recordFrame(samples) {
  if (recorder) recorder.push(samples);
}

/** The TTS styles from /styles into the style menu (the default selected). */
export async function loadStyles(services, showError) {
  const select = $("style");
  try {
    const styles = await services.json("tts", "/styles");
    select.replaceChildren(
      ...styles.styles.map((style) => {
        const option = new Option(`${style.name} (${style.language})`, style.name);
        option.title = style.description || "";
        option.selected = style.name === styles.default;
        return option;
      }),
    );
  } catch (error) {
    select.replaceChildren(new Option("—", ""));
    showError(error);
  }
}

function showReference() {
  const stateText = $("reference-state");
  stateText.textContent = reference ? t("referenceSet", { name: reference.name, seconds: reference.seconds }) : t("noReference");
}

/** Settings: reference recording (mic or file), interface language, API key button. */
export function wireSettings({ services, mic, ensureMic, showError, onLanguage }) {
  showReference();
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
    const system = $("system");
    const wasDefault = system.value === t("defaultSystem");
    setLanguage(otherLanguage());
    if (wasDefault) system.value = t("defaultSystem");
    showReference();
    onLanguage();
  });
  $("key-button").addEventListener("click", async () => {
    await services().requestKey("");
    loadStyles(services(), showError);
  });
}

/** Ask for the API key in the page's dialog: resolves to the key, or null when cancelled. */
export function askForKey(service, currentKey) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = service ? `${t("needsKey", { service: LABELS[service] })} ${t("keyNeeded")}` : t("keyNeeded");
  $("key-input").value = currentKey;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? $("key-input").value.trim() : null), { once: true });
    dialog.showModal();
  });
}

/** The status strip: each service's /health. */
export async function refreshHealth(services) {
  const strip = document.querySelector("[data-testid=status]");
  await Promise.all(
    SERVICE_NAMES.map(async (name) => {
      const health = await services.health(name);
      const item = strip.querySelector(`[data-service=${name}]`);
      item.dataset.state = health.state;
      const detail = health.state === "down" ? t("downDetail", { url: health.detail }) : health.state === "ok" ? health.detail : t("loading");
      item.querySelector(".detail").textContent = `${t(health.state === "ok" ? "ok_state" : health.state)} · ${detail}`;
      item.title = detail;
    }),
  );
  strip.dataset.checked = String(Number(strip.dataset.checked || 0) + 1);
}

/** The embeddings panel: a query and passages -> /rerank's ranking with scores. */
export function wireRerank(services, showError) {
  const results = $("rerank-results");
  $("rerank-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = $("rerank-query").value.trim();
    const candidates = $("rerank-candidates").value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (!query || !candidates.length) return;
    try {
      const body = await services().json("embedding", "/rerank", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query, candidates }),
      });
      results.replaceChildren(...body.results.map(resultItem));
      results.dataset.model = body.model;
    } catch (error) {
      showError(error);
    }
  });
}

function resultItem(result) {
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
}
