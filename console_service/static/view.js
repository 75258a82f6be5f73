// The conversation's text fields: errors, the latency line, earlier turns.

import { t } from "./i18n.js";
import { LABELS } from "./panels.js";
import { ServiceError } from "./services.js";

const $ = (id) => document.getElementById(id);

/** Show an error a person can read in the error line (``urls``: the services' base URLs). */
export function showError(error, urls) {
  const text =
    error instanceof ServiceError
      ? error.unreachable
        ? t("unreachable", { service: LABELS[error.service], url: urls[error.service] })
        : t("failed", { service: LABELS[error.service], message: error.message })
      : String(error.message || error);
  $("error").textContent = text;
  $("error").dataset.service = error.service || "";
  console.warn(text);
}

export function clearError() {
  $("error").textContent = "";
  $("error").dataset.service = "";
}

/** The latency line (milliseconds from speech end), also as data-final-ms, data-token-ms, data-audio-ms. */
export function showLatency(times) {
  const latency = $("latency");
  const seconds = (value) => (value === undefined ? "…" : `${(value / 1000).toFixed(2)} s`);
  latency.textContent = t("latency", { final: seconds(times.final), token: seconds(times.token), audio: seconds(times.audio) });
  for (const [name, value] of Object.entries(times)) latency.dataset[`${name}Ms`] = String(Math.round(value));
}

/** Move the current turn (your text, the answer) into the history list. */
export function archiveTurn() {
  const [final, reply] = [$("final").textContent, $("reply").textContent];
  if (!final) return;
  for (const [role, text] of [["user", final], ["assistant", reply]]) {
    const item = document.createElement("li");
    item.className = role;
    item.textContent = text;
    $("history").append(item);
  }
}
