export interface Command {
  summary: string;
  run(argv: string[]): Promise<void>;
}
