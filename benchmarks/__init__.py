"""Side-by-side speed and quality measurements, printed as ratios."""
