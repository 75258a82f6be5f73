// The console's side panels: settings (styles, interface language, API key), the status strip and the
// embeddings (rerank) panel.

import { otherLanguage, setLanguage, t } from "./i18n.js";
import { SERVICE_NAMES } from "./services.js";

const $ = (id) => document.getElementById(id);
export const LABELS = { asr: "ASR", llm: "LLM", tts: "TTS", embedding: "Embeddings", agent: "Voice agent" };

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

/** Settings: interface language, API key button (``onKey``: after a key was entered). */
export function wireSettings({ services, showError, onLanguage, onKey }) {
  $("ui-language").addEventListener("click", () => {
    const system = $("system");
    const wasDefault = system.value === t("defaultSystem");
    setLanguage(otherLanguage());
    if (wasDefault) system.value = t("defaultSystem");
    onLanguage();
  });
  $("key-button").addEventListener("click", async () => {
    if (await services().requestKey("")) onKey();
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
