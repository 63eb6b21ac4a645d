/**
 * Turns the words after `mags run` into the script the server runs: one word is a shell script
 * (as Mags); several are an argv, quoted so the shell hands every word to the program unchanged
 * (as `docker run` does).
 */

/** Characters a word may consist of and still mean itself to bash without quotes. */
const SAFE_WORD = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

/** Words bash reads as syntax when they come first; quoted there so they are run as programs. */
const RESERVED_FIRST = new Set([
  'case', 'coproc', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'function', 'if', 'in', 'select',
  'then', 'time', 'until', 'while',
]);

/** One word in POSIX single quotes (an embedded `'` becomes `'\''`), or bare when nothing in it is special. */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * Joins an argv into a shell command that runs exactly that argv. The first word is also quoted
 * when bash would read it as a keyword, and `=` is unsafe anywhere (`A=b` first is an assignment).
 */
export function argvToScript(argv: readonly string[]): string {
  return argv
    .map((word, i) => (i === 0 && (RESERVED_FIRST.has(word) || word.includes('=')) ? `'${word.replaceAll("'", "'\\''")}'` : shellQuote(word)))
    .join(' ');
}

/** The script for `mags run WORDS...`: a single word as it is, several words as a quoted argv. */
export function scriptFromWords(words: readonly string[]): string {
  return words.length === 1 ? words[0]! : argvToScript(words);
}
