// WCAG 2.x contrast for the page checks: the ratio of two computed colours, `rgb(…)` (0–255) or
// `color(srgb …)` (0–1), as Chromium reports them.
const luminance = (css) => {
  const scale = css.startsWith('color(srgb') ? 1 : 255;
  const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map(Number).map((c) => {
    const s = c / scale;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};

export const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
