// The client side of the single-page-app demo: show which route the server answered for.
document.getElementById("route").textContent = window.location.pathname;
