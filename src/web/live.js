for (const button of document.querySelectorAll("button[data-copy]")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.copy);
    input.select();
    try { await navigator.clipboard.writeText(input.value); } catch { document.execCommand("copy"); }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
}
setInterval(async () => {
  try {
    const fresh = new DOMParser().parseFromString(await (await fetch("/")).text(), "text/html");
    for (const section of document.querySelectorAll("[data-live]")) {
      const next = fresh.getElementById(section.id);
      if (next) section.replaceWith(next);
    }
  } catch { /* the appliance may be restarting: the next round tries again */ }
}, 5000);
