<?php
// CGI demo: a PHP page through php-cgi (cgi .php /usr/bin/php-cgi;).
header("Content-Type: text/html; charset=utf-8");
$name = $_POST["name"] ?? $_GET["name"] ?? "";
$h = fn($s) => htmlspecialchars((string)$s, ENT_QUOTES, "UTF-8");
?>
<!doctype html>
<html><head><meta charset="utf-8"><title>PHP through CGI</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>PHP <?= $h(phpversion()) ?> through CGI</h1>
<p>Method: <code id="method"><?= $h($_SERVER["REQUEST_METHOD"]) ?></code>,
   SAPI: <code id="sapi"><?= $h(php_sapi_name()) ?></code></p>
<?php if ($name !== ""): ?>
<p class="greeting">Hello, <span id="name"><?= $h($name) ?></span>!</p>
<?php endif; ?>
<form method="post"><label>Name <input name="name" value="<?= $h($name) ?>"></label>
<button type="submit">POST it</button></form>
<h2>$_GET</h2><pre id="get"><?= $h(json_encode($_GET)) ?></pre>
<h2>$_POST</h2><pre id="post"><?= $h(json_encode($_POST)) ?></pre>
</main></body></html>
