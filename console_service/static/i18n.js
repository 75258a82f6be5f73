// Interface text in English and Chinese. Elements carry data-i18n="key"; messages come from t(key, values).

const STRINGS = {
  en: {
    title: "Voice console",
    embeddings: "Embeddings",
    apiKey: "API key",
    conversation: "Conversation",
    hearing: "Hearing",
    you: "You",
    assistant: "Assistant",
    holdToTalk: "Hold to talk",
    listening: "Listening… release to send",
    handsFree: "Hands-free",
    newChat: "New conversation",
    talkHint:
      "Hold the button or the space bar while you speak. Hands-free: just speak; a pause ends your turn. Speaking again interrupts the answer (Esc stops it).",
    settings: "Settings",
    language: "Language",
    auto: "Automatic",
    voice: "Voice style",
    systemPrompt: "System prompt",
    defaultSystem: "You are a helpful voice assistant. Answer briefly, in one to three short sentences, in the language of the question.",
    maxTokens: "Longest answer (tokens)",
    temperature: "Temperature (empty: the model's default; 0: always its most likely answer)",
    rerankTitle: "Embeddings: rank passages",
    query: "Query",
    candidates: "Passages, one per line",
    rank: "Rank",
    keyNeeded: "The services require an API key. It is kept for this tab only.",
    cancel: "Cancel",
    ok: "OK",
    ok_state: "ready",
    loading: "loading",
    down: "down",
    downDetail: "not running at {url}",
    latency: "speech end → text {final} · → first words {token} · → first audio {audio}",
    unreachable: "{service} is not reachable at {url}: is it running, and does it allow this page (server.cors_origins)?",
    failed: "{service}: {message}",
    micFailed: "Microphone unavailable: {message}",
    heardNothing: "Heard nothing: try again, closer to the microphone.",
    interrupted: "(interrupted)",
    agentClosed: "The voice agent closed the conversation: {message}",
    needsKey: "{service} needs the API key.",
  },
  zh: {
    title: "语音控制台",
    embeddings: "向量",
    apiKey: "API 密钥",
    conversation: "对话",
    hearing: "正在听",
    you: "你",
    assistant: "助手",
    holdToTalk: "按住说话",
    listening: "正在听……松开发送",
    handsFree: "免按键",
    newChat: "新对话",
    talkHint: "说话时按住按钮或空格键。免按键模式：直接说话，停顿即结束本轮。再次说话会打断回答（Esc 停止）。",
    settings: "设置",
    language: "语言",
    auto: "自动",
    voice: "音色",
    systemPrompt: "系统提示词",
    defaultSystem: "你是一个乐于助人的语音助手。请简短回答，一到三句话，使用提问的语言。",
    maxTokens: "回答最长（token）",
    temperature: "温度（留空：模型默认；0：总是给出最可能的回答）",
    rerankTitle: "向量：段落排序",
    query: "查询",
    candidates: "候选段落，每行一段",
    rank: "排序",
    keyNeeded: "服务需要 API 密钥。密钥只保存在本标签页。",
    cancel: "取消",
    ok: "确定",
    ok_state: "正常",
    loading: "加载中",
    down: "未运行",
    downDetail: "{url} 无法访问",
    latency: "说完 → 文字 {final} · → 首段回答 {token} · → 首段语音 {audio}",
    unreachable: "无法访问 {service}（{url}）：服务是否在运行？是否允许本页面的来源（server.cors_origins）？",
    failed: "{service}：{message}",
    micFailed: "麦克风不可用：{message}",
    heardNothing: "没有听到内容，请靠近麦克风再试一次。",
    interrupted: "（已打断）",
    agentClosed: "语音助手结束了对话：{message}",
    needsKey: "{service} 需要 API 密钥。",
  },
};

let current = localStorage.getItem("console-language") || (navigator.language.startsWith("zh") ? "zh" : "en");

export function language() {
  return current;
}

/** The text for ``key`` in the interface language, with {name} placeholders filled from ``values``. */
export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** Switch the interface language and relabel every element that has data-i18n. */
export function setLanguage(code) {
  current = code in STRINGS ? code : "en";
  localStorage.setItem("console-language", current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  const toggle = document.getElementById("ui-language");
  toggle.textContent = current === "zh" ? "English" : "中文";
  toggle.lang = current === "zh" ? "en" : "zh";
  document.title = t("title");
}

export function otherLanguage() {
  return current === "zh" ? "en" : "zh";
}
