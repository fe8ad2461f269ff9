/** The sidebar's icon: a grid (a tensor) with a pen stroke through one cell (written in place). */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h8v8H3zm2 2v4h4V5zM13 3h8v8h-8zm2 2v4h4V5zM3 13h8v8H3zm2 2v4h4v-4z"/>
    <path d="M13.5 21.5v-2.6l5.8-5.8 2.6 2.6-5.8 5.8zm6.9-9.5 1-1a1 1 0 0 1 1.4 0l1.2 1.2a1 1 0 0 1 0 1.4l-1 1z"/>
  </g>
</svg>`;

export const inplaceMagicIcon = new LabIcon({ name: 'inplace-magic:sidebar', svgstr });
