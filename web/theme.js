// Applies the theme the user picked (light or dark) before the first paint, so a dark page
// does not flash white. A classic script, loaded from this server (no inline code: the page
// runs under a strict Content-Security-Policy). Without a saved choice the stylesheet follows
// the system's prefers-color-scheme.
(function () {
  try {
    var saved = window.localStorage.getItem('hopper.theme');
    if (saved === 'light' || saved === 'dark') {
      document.documentElement.setAttribute('data-theme', saved);
    }
  } catch (e) {
    // Storage can be disabled; the system theme applies then.
  }
})();
