// Progressive enhancements; every page works without them.

// Forms marked data-confirm ask before submitting (deletes).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
