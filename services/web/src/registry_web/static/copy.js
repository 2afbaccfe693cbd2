// Copy buttons for the install commands: an enhancement only (without JavaScript the commands are plain text).
document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
  if (!navigator.clipboard) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var source = document.getElementById(button.getAttribute("data-copy"));
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });
});
