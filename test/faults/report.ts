/** The figures a fault suite measured, printed as a table when the file ends (for the closing note). */
type Figures = Record<string, string | number>;

const rows: Array<[string, Figures]> = [];

export const report = {
  add(fault: string, figures: Figures): void {
    rows.push([fault, figures]);
  },
  print(suite: string): void {
    const lines = rows.map(
      ([fault, f]) =>
        `  ${fault}\n${Object.entries(f)
          .map(([k, v]) => `      ${k}: ${v}`)
          .join('\n')}`,
    );
    process.stdout.write(`\n[faults] ${suite}\n${lines.join('\n')}\n`);
    rows.length = 0;
  },
};
