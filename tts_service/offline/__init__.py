"""The offline default's parts: Chinese FastSpeech2 on LiteRT, English Piper, espeak-ng, prosody tools."""
