/** The part of JupyterLab's TranslationBundle the pure modules need (tests pass nullTranslator's). */
export interface ITrans {
  __(msgid: string, ...args: (string | number)[]): string;
}
