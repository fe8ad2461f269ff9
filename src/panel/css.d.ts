// Style sheets are bundled by esbuild into static/widget.css; importing one yields nothing.
declare module '*.css';
