// Entitle portal: progressive enhancement only. Every page works without this file; it adds
// copy buttons (`<button type="button" data-copy="#id">Copy</button>` copies the text of #id).
(function () {
    "use strict";

    // Copy buttons are hidden by the stylesheet until this class says they will work.
    document.documentElement.classList.add("js");

    var RESET_AFTER_MS = 2000;

    function copyText(text) {
        if (navigator.clipboard && window.isSecureContext) {
            return navigator.clipboard.writeText(text);
        }
        // Plain-http deployments (and old browsers) have no async clipboard: select and copy.
        return new Promise(function (resolve, reject) {
            var buffer = document.createElement("textarea");
            buffer.className = "copy-buffer";
            buffer.setAttribute("readonly", "");
            buffer.setAttribute("aria-hidden", "true");
            buffer.value = text;
            document.body.appendChild(buffer);
            buffer.select();
            var copied = false;
            try {
                copied = document.execCommand("copy");
            } catch (error) {
                copied = false;
            }
            document.body.removeChild(buffer);
            if (copied) {
                resolve();
            } else {
                reject(new Error("copy refused"));
            }
        });
    }

    function say(button, message) {
        if (!button.hasAttribute("data-label")) {
            button.setAttribute("data-label", button.textContent);
        }
        button.textContent = message;
        window.clearTimeout(button.copyTimer);
        button.copyTimer = window.setTimeout(function () {
            button.textContent = button.getAttribute("data-label");
        }, RESET_AFTER_MS);
    }

    document.addEventListener("click", function (event) {
        var button = event.target.closest && event.target.closest("button[data-copy]");
        if (!button) {
            return;
        }
        var source = null;
        try {
            source = document.querySelector(button.getAttribute("data-copy"));
        } catch (error) {
            source = null; // not a valid selector
        }
        if (!source) {
            return;
        }
        event.preventDefault();
        copyText(source.textContent.trim()).then(
            function () {
                say(button, "Copied");
            },
            function () {
                say(button, "Press Ctrl+C to copy");
            }
        );
    });

    // Announce the "Copied" change to screen readers.
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
        buttons[i].setAttribute("aria-live", "polite");
    }
})();
