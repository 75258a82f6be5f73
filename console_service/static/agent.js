// The voice agent's connection: one OpenAI Realtime conversation over the console's own /v1/realtime.

import { RATE, toBase64 } from "./audio.js";

const MARKS_KEPT = 1500; // frames (of about 40 ms) whose capture times are remembered: a minute of audio

/** One conversation with the agent: JSON events both ways, the person's audio as base64 pcm16 at 24 kHz. */
export class Agent {
  /** ``socket``: from Services.agentSocket(); ``onEvent(event)``; ``onClose(agent, closeEvent)``. */
  constructor(socket, { onEvent, onClose }) {
    this.socket = socket;
    this.pending = []; // events sent before the connection opened
    this.samples = 0; // audio appended so far (24 kHz samples)
    this.marks = []; // [samples appended up to this frame, when it was captured]
    this.failure = null; // the error that ends the connection (a refused key, too many sessions, a lost ASR)
    this.closedByUs = false;
    socket.onopen = () => {
      for (const text of this.pending) socket.send(text);
      this.pending = [];
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      // a refused connection gets {"error"} and a close; a lost upstream an error event and a close
      if (!event.type && event.error) this.failure = event.error;
      if (event.type === "error" && event.error && event.error.code === "upstream_closed") this.failure = event.error;
      onEvent(event.type ? event : { type: "error", error: event.error });
    };
    socket.onclose = (close) => onClose(this, close);
  }

  get closed() {
    return this.socket.readyState >= WebSocket.CLOSING;
  }

  /** Send one client event (queued while the connection opens). */
  send(event) {
    const text = JSON.stringify(event);
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
    else if (this.socket.readyState === WebSocket.CONNECTING) this.pending.push(text);
  }

  /** Append 24 kHz 16-bit samples captured at ``capturedAt`` (performance.now() time). */
  append(samples, capturedAt) {
    this.samples += samples.length;
    this.marks.push([this.samples, capturedAt]);
    if (this.marks.length > MARKS_KEPT) this.marks.shift();
    this.send({ type: "input_audio_buffer.append", audio: toBase64(samples) });
  }

  /** When the audio at ``ms`` into the conversation's input (``audio_end_ms``) was captured, or null. */
  capturedAt(ms) {
    const index = (ms / 1000) * RATE;
    const mark = this.marks.find(([sent]) => sent >= index);
    return mark ? mark[1] : null;
  }

  close() {
    this.closedByUs = true;
    this.socket.close();
  }
}
