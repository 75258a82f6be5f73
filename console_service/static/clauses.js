// Clause splitting for speaking a streamed reply: the same rules as core.py's split_ready_clauses
// (tests/test_console.py checks both give the same clauses).

// Sentence ends always cut; commas only once the clause has MIN_CLAUSE_CHARS characters.
// Not inside 1,000 or 10:30 (a comma or colon before a digit), nor at a period not followed by a space.
const CLAUSE_END = /[。！？；!?;…\n]|[，、：]|[,:](?=\P{Nd})|\.(?=\s)/gu;
const COMMAS = "，、,：:";
export const MIN_CLAUSE_CHARS = 6;

const length = (text) => [...text].length; // code points, as Python counts

/** Cut finished clauses off the front of streamed text: {clauses, rest}. With final, the rest is a clause too. */
export function splitReadyClauses(buffer, final = false) {
  const clauses = [];
  let start = 0;
  for (const match of buffer.matchAll(CLAUSE_END)) {
    const end = match.index + match[0].length;
    const piece = buffer.slice(start, end);
    if (COMMAS.includes(match[0]) && length(piece.trim()) < MIN_CLAUSE_CHARS) continue;
    if (piece.trim()) clauses.push(piece.trim());
    start = end;
  }
  let rest = buffer.slice(start);
  if (final && rest.trim()) {
    clauses.push(rest.trim());
    rest = "";
  }
  return { clauses, rest };
}

/** Whether a clause has something to say (core.py skips clauses of only symbols or emoji). */
export function speakable(clause) {
  return /[\p{L}\p{N}]/u.test(clause);
}
