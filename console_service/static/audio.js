// Microphone in (16-bit PCM frames for the voice agent) and speech out (PCM chunks played gap-free in order).

export const RATE = 24000; // the voice agent's audio, both ways: pcm16 mono at 24 kHz
const FRAME_SECONDS = 0.04;
const PRE_ROLL_SECONDS = 0.3; // sent before a hold-to-talk press, so the first syllable is not cut

/** The microphone as s16le PCM frames at ``sampleRate`` (24 kHz when the browser resamples, else its own rate). */
export class Microphone {
  constructor() {
    this.context = null;
    this.stream = null;
    this.onFrame = null; // (Int16Array, capturedAtMs) => void
    this.recent = []; // the last PRE_ROLL_SECONDS of frames
  }

  get sampleRate() {
    return this.context ? this.context.sampleRate : RATE;
  }

  async start() {
    if (this.context) return;
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    try {
      await this.connect(new AudioContext({ sampleRate: RATE }));
    } catch {
      await this.connect(new AudioContext()); // no resampling from the mic's rate: send the context's own
    }
  }

  async connect(context) {
    try {
      await context.audioWorklet.addModule("assets/pcm-worklet.js");
      const source = context.createMediaStreamSource(this.stream);
      const frameSamples = Math.round(context.sampleRate * FRAME_SECONDS);
      const node = new AudioWorkletNode(context, "pcm-frames", { processorOptions: { frameSamples } });
      node.port.onmessage = (event) => this.frame(new Int16Array(event.data));
      source.connect(node);
      await context.resume();
      this.context = context;
    } catch (error) {
      context.close();
      throw error;
    }
  }

  frame(samples) {
    const now = performance.now();
    this.recent.push(samples);
    const keep = Math.ceil(PRE_ROLL_SECONDS / FRAME_SECONDS);
    if (this.recent.length > keep) this.recent.shift();
    if (this.onFrame) this.onFrame(samples, now);
  }

  /** The last few hundred milliseconds, for a session that starts now. */
  preRoll() {
    return [...this.recent];
  }
}

/** Plays PCM chunks in order without gaps; counts the seconds played; stops at once on barge-in. */
export class Player {
  constructor() {
    this.context = null;
    this.sources = new Set();
    this.reset();
    this.onStart = null; // (startsAtMs) => void, when the first chunk of a turn is scheduled
    this.onIdle = null; // () => void, when the last scheduled chunk has finished
  }

  reset() {
    this.nextTime = 0;
    this.scheduled = []; // [startTime, duration] in context time
    this.started = false;
  }

  /** Create or resume the output (call from a user gesture: browsers keep audio muted until one). */
  unlock() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === "suspended") this.context.resume();
  }

  /** Queue 16-bit PCM (an Int16Array) at ``rate`` right after what is already queued. */
  play(samples, rate) {
    this.unlock();
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const now = this.context.currentTime;
    const startAt = Math.max(this.nextTime, now + 0.02);
    source.start(startAt);
    this.nextTime = startAt + buffer.duration;
    this.scheduled.push([startAt, buffer.duration]);
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      if (!this.sources.size && this.onIdle) this.onIdle();
    };
    if (!this.started) {
      this.started = true;
      if (this.onStart) this.onStart(performance.now() + (startAt - now) * 1000);
    }
  }

  get playing() {
    return this.sources.size > 0;
  }

  /** Seconds of this turn's audio heard so far. */
  playedSeconds() {
    if (!this.context) return 0;
    const now = this.context.currentTime;
    return this.scheduled.reduce((sum, [start, duration]) => sum + Math.min(Math.max(now - start, 0), duration), 0);
  }

  /** Seconds of this turn's audio queued in all. */
  queuedSeconds() {
    return this.scheduled.reduce((sum, [, duration]) => sum + duration, 0);
  }

  /** Stop everything now (barge-in); returns the seconds that had been played. */
  stop() {
    const played = this.playedSeconds();
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.sources.clear();
    this.scheduled = this.scheduled.map(([start, duration]) => [start, Math.min(Math.max(this.context.currentTime - start, 0), duration)]);
    this.nextTime = 0;
    return played;
  }
}

/** 16-bit samples at ``from`` Hz -> at ``to`` Hz (linear interpolation; only when the browser could not resample). */
export function resample(samples, from, to) {
  if (from === to) return samples;
  const out = new Int16Array(Math.floor((samples.length * to) / from));
  const step = from / to;
  for (let i = 0; i < out.length; i++) {
    const position = i * step;
    const index = Math.floor(position);
    const next = Math.min(index + 1, samples.length - 1);
    out[i] = Math.round(samples[index] + (samples[next] - samples[index]) * (position - index));
  }
  return out;
}

/** 16-bit samples -> base64 of their little-endian bytes (``input_audio_buffer.append``). */
export function toBase64(samples) {
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** base64 of little-endian 16-bit PCM (``response.output_audio.delta``) -> samples. */
export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length - (binary.length % 2));
  for (let i = 0; i < bytes.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Int16Array(bytes.buffer);
}
