// Brings the console's islands to life when the wasm build is served: loads it,
// then hands each <leptos-island> to its export. Without islands on the page, or
// when the wasm cannot run, the page reloads itself as often as it asks to
// (<body data-refresh>), exactly as the <noscript> refresh does with scripts off.
function reloadLater() {
  const secs = Number(document.body.dataset.refresh || 0);
  if (secs > 0) setTimeout(() => location.reload(), secs * 1000);
}

const islands = document.querySelectorAll("leptos-island");
if (islands.length === 0) {
  reloadLater();
} else {
  try {
    const wasm = await import("/console/pkg/console.js");
    await wasm.default({ module_or_path: "/console/pkg/console_bg.wasm" });
    wasm.hydrate();
    let missing = false;
    for (const island of islands) {
      const start = wasm[island.dataset.component];
      if (typeof start === "function") start(island);
      else missing = true;
    }
    if (missing) throw new Error("the served wasm build does not match this server");
    document.documentElement.dataset.hydrated = "true";
  } catch (e) {
    console.warn("console islands stay static:", e);
    reloadLater();
  }
}
