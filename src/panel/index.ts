/** The anywidget entry point of the diagnosis panel (bundled into inplace_magic/static/widget.js). */
import type { Render } from '@anywidget/types';

import { renderPanel } from './panel';
import type { IPanelModel } from './wire';
import './widget.css';

const render: Render<IPanelModel> = ({ model, el }) => renderPanel(el, model);

export default { render };
